//! How records are written in Redis (JSON values, decimal strings in hashes) and read back from
//! the capability's flattened replies.

use codexcontinue_sdk::memory::parse_role;
use codexcontinue_sdk::redis::RedisResult;
use codexcontinue_sdk::vendor::role_name;
use codexcontinue_sdk::{Embedding, NewMessage, Role, SessionInfo, StoreError, StoredMessage, Summary};
use serde::{Deserialize, Serialize};

/// A message as stored in the messages list; its seq is its position, so it is not stored.
#[derive(Serialize, Deserialize)]
struct MessageRecord {
    role: String,
    content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<String>,
    created_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct SummaryRecord {
    text: String,
    through_seq: u64,
    updated_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct EmbeddingRecord {
    seq: u64,
    model: String,
    vector: Vec<f32>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("corrupt {what} in Redis: {e}"))
}

/// Milliseconds since the Unix epoch, for sessions created without messages.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn role(name: &str) -> Result<Role, StoreError> {
    parse_role(name).ok_or_else(|| corrupt("message", format!("unknown role {name:?}")))
}

/// The JSON kept for `m`.
pub fn encode_message(m: &NewMessage) -> String {
    let record = MessageRecord {
        role: role_name(m.role).into(),
        content: m.content.clone(),
        name: m.name.clone(),
        metadata: m.metadata.clone(),
        created_at_ms: m.created_at_ms,
    };
    serde_json::to_string(&record).expect("a record of strings and numbers serialises")
}

/// The message at `seq` from its list item.
pub fn decode_message(item: &RedisResult, seq: u64) -> Result<StoredMessage, StoreError> {
    let record: MessageRecord = serde_json::from_slice(bytes(item)?).map_err(|e| corrupt("message", e))?;
    Ok(StoredMessage::new(
        seq,
        NewMessage {
            role: role(&record.role)?,
            content: record.content,
            name: record.name,
            metadata: record.metadata,
            created_at_ms: record.created_at_ms,
        },
    ))
}

/// The summary's JSON.
pub fn encode_summary(s: &Summary) -> String {
    let record = SummaryRecord { text: s.text.clone(), through_seq: s.through_seq, updated_at_ms: s.updated_at_ms };
    serde_json::to_string(&record).expect("a record of strings and numbers serialises")
}

/// The summary from a `GET` reply, if there is one.
pub fn decode_summary(reply: &[RedisResult]) -> Result<Option<Summary>, StoreError> {
    match reply.first() {
        None | Some(RedisResult::Nil) => Ok(None),
        Some(item) => {
            let r: SummaryRecord = serde_json::from_slice(bytes(item)?).map_err(|e| corrupt("summary", e))?;
            Ok(Some(Summary { text: r.text, through_seq: r.through_seq, updated_at_ms: r.updated_at_ms }))
        }
    }
}

/// The embedding's JSON; `f32` values print in their shortest exact form and read back equal.
pub fn encode_embedding(e: &Embedding) -> String {
    let record = EmbeddingRecord { seq: e.seq, model: e.model.clone(), vector: e.vector.clone() };
    serde_json::to_string(&record).expect("finite floats serialise")
}

/// An embedding from one `HVALS` item.
pub fn decode_embedding(item: &RedisResult) -> Result<Embedding, StoreError> {
    let r: EmbeddingRecord = serde_json::from_slice(bytes(item)?).map_err(|e| corrupt("embedding", e))?;
    Ok(Embedding { seq: r.seq, model: r.model, vector: r.vector })
}

fn bytes(item: &RedisResult) -> Result<&[u8], StoreError> {
    match item {
        RedisResult::Binary(b) => Ok(b),
        RedisResult::Status(s) => Ok(s.as_bytes()),
        other => Err(corrupt("reply", format!("expected a string, got {other:?}"))),
    }
}

/// A string reply.
pub fn string(item: &RedisResult) -> Result<String, StoreError> {
    String::from_utf8(bytes(item)?.to_vec()).map_err(|e| corrupt("string", e))
}

/// The first value of a reply, or `None` for nil.
pub fn opt_string(reply: &[RedisResult]) -> Result<Option<String>, StoreError> {
    match reply.first() {
        None | Some(RedisResult::Nil) => Ok(None),
        Some(item) => string(item).map(Some),
    }
}

/// The first value of a reply as a count (an integer reply, or a decimal string).
pub fn count(reply: &[RedisResult]) -> Result<u64, StoreError> {
    match reply.first() {
        Some(RedisResult::Int64(i)) => u64::try_from(*i).map_err(|e| corrupt("count", e)),
        Some(item) => string(item)?.parse().map_err(|e| corrupt("number", e)),
        None => Err(corrupt("reply", "empty")),
    }
}

/// A session from its `HMGET user title created updated` and `LLEN` replies; `None` if the
/// hash does not exist.
pub fn session(id: &str, fields: &[RedisResult], len: &[RedisResult]) -> Result<Option<SessionInfo>, StoreError> {
    let field = |i: usize| opt_string(fields.get(i..).unwrap_or_default());
    let Some(user) = field(0)? else { return Ok(None) };
    let number = |i: usize| -> Result<u64, StoreError> {
        field(i)?.unwrap_or_default().parse().map_err(|e| corrupt("session", e))
    };
    Ok(Some(SessionInfo {
        id: id.to_string(),
        user,
        title: field(1)?,
        created_at_ms: number(2)?,
        updated_at_ms: number(3)?,
        message_count: count(len)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages, summaries and embeddings read back exactly as written, unicode and odd floats
    /// included.
    #[test]
    fn round_trips() {
        let m = NewMessage {
            role: Role::Tool,
            content: "héllo 👋\n\"quoted\"".into(),
            name: Some("n".into()),
            metadata: Some(r#"{"a":1}"#.into()),
            created_at_ms: 1_700_000_000_123,
        };
        let item = RedisResult::Binary(encode_message(&m).into_bytes());
        assert_eq!(decode_message(&item, 7).unwrap(), StoredMessage::new(7, m));

        let s = Summary { text: "sum".into(), through_seq: 4, updated_at_ms: 9 };
        assert_eq!(decode_summary(&[RedisResult::Binary(encode_summary(&s).into_bytes())]).unwrap(), Some(s));
        assert_eq!(decode_summary(&[RedisResult::Nil]).unwrap(), None);

        let e = Embedding { seq: 3, model: "m".into(), vector: vec![0.1, -1.0e-30, 3.4e38, 1.0 / 3.0] };
        assert_eq!(decode_embedding(&RedisResult::Binary(encode_embedding(&e).into_bytes())).unwrap(), e);
    }

    /// A session hash with its length becomes a session; a missing hash is none.
    #[test]
    fn sessions() {
        let b = |s: &str| RedisResult::Binary(s.as_bytes().to_vec());
        let fields = [b("u"), RedisResult::Nil, b("10"), b("20")];
        let s = session("id", &fields, &[RedisResult::Int64(3)]).unwrap().unwrap();
        assert_eq!(
            (s.user.as_str(), s.title, s.created_at_ms, s.updated_at_ms, s.message_count),
            ("u", None, 10, 20, 3)
        );
        let missing = [RedisResult::Nil, RedisResult::Nil, RedisResult::Nil, RedisResult::Nil];
        assert!(session("id", &missing, &[RedisResult::Int64(0)]).unwrap().is_none());
    }
}
