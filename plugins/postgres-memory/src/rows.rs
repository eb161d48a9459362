//! Reading typed values out of the capability's `db-value` rows, and the role spelling stored in
//! the `messages.role` column.

use codexcontinue_sdk::memory::parse_role;
use codexcontinue_sdk::postgres::DbValue;
use codexcontinue_sdk::{Embedding, Role, SessionInfo, StoreError, StoredMessage, Summary};

fn corrupt(what: String) -> StoreError {
    StoreError::Invalid(format!("unexpected value in Postgres: {what}"))
}

/// Column `i` of `row`.
fn at(row: &[DbValue], i: usize) -> Result<&DbValue, StoreError> {
    row.get(i).ok_or_else(|| corrupt(format!("row has no column {i}")))
}

/// A non-null text column.
pub fn text(row: &[DbValue], i: usize) -> Result<String, StoreError> {
    opt_text(row, i)?.ok_or_else(|| corrupt(format!("column {i} is null")))
}

/// A nullable text column.
pub fn opt_text(row: &[DbValue], i: usize) -> Result<Option<String>, StoreError> {
    match at(row, i)? {
        DbValue::Null => Ok(None),
        DbValue::Text(s) => Ok(Some(s.clone())),
        other => Err(corrupt(format!("column {i} is {other:?}, not text"))),
    }
}

/// A non-negative bigint column.
pub fn number(row: &[DbValue], i: usize) -> Result<u64, StoreError> {
    match at(row, i)? {
        DbValue::Int64(n) => u64::try_from(*n).map_err(|_| corrupt(format!("column {i} is negative"))),
        DbValue::Int32(n) => u64::try_from(*n).map_err(|_| corrupt(format!("column {i} is negative"))),
        other => Err(corrupt(format!("column {i} is {other:?}, not a number"))),
    }
}

/// A u64 as the bigint parameter Postgres stores it as.
pub fn int8(n: u64) -> DbValue {
    DbValue::Int64(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Text or null.
pub fn opt(s: Option<String>) -> DbValue {
    s.map_or(DbValue::Null, DbValue::Text)
}

fn role(name: &str) -> Result<Role, StoreError> {
    parse_role(name).ok_or_else(|| corrupt(format!("unknown role {name:?}")))
}

/// Columns: id, user_id, title, created_at_ms, updated_at_ms, message_count.
pub fn session(row: &[DbValue]) -> Result<SessionInfo, StoreError> {
    Ok(SessionInfo {
        id: text(row, 0)?,
        user: text(row, 1)?,
        title: opt_text(row, 2)?,
        created_at_ms: number(row, 3)?,
        updated_at_ms: number(row, 4)?,
        message_count: number(row, 5)?,
    })
}

/// Columns: seq, role, content, name, metadata (jsonb, read as text), created_at_ms.
pub fn message(row: &[DbValue]) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage {
        seq: number(row, 0)?,
        role: role(&text(row, 1)?)?,
        content: text(row, 2)?,
        name: opt_text(row, 3)?,
        metadata: opt_text(row, 4)?,
        created_at_ms: number(row, 5)?,
    })
}

/// Columns: text, through_seq, updated_at_ms.
pub fn summary(row: &[DbValue]) -> Result<Summary, StoreError> {
    Ok(Summary { text: text(row, 0)?, through_seq: number(row, 1)?, updated_at_ms: number(row, 2)? })
}

/// Columns: seq, model, vector.
pub fn embedding(row: &[DbValue]) -> Result<Embedding, StoreError> {
    let vector = match at(row, 2)? {
        DbValue::Float32Array(v) => v.clone(),
        other => return Err(corrupt(format!("vector is {other:?}, not real[]"))),
    };
    Ok(Embedding { seq: number(row, 0)?, model: text(row, 1)?, vector })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows in the shapes the queries select read back into records; wrong shapes are errors.
    #[test]
    fn reads_rows() {
        let row = vec![
            DbValue::Int64(2),
            DbValue::Text("tool".into()),
            DbValue::Text("hi".into()),
            DbValue::Null,
            DbValue::Text("{}".into()),
            DbValue::Int64(5),
        ];
        let m = message(&row).unwrap();
        assert_eq!((m.seq, m.role, m.name, m.metadata.as_deref()), (2, Role::Tool, None, Some("{}")));
        assert!(number(&[DbValue::Int64(-1)], 0).is_err());
        assert!(text(&[DbValue::Null], 0).is_err());
        assert!(embedding(&[DbValue::Int64(1), DbValue::Text("m".into()), DbValue::Null]).is_err());
        assert!(role("wizard").is_err());
    }
}
