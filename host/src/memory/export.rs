//! JSONL export and import of a user's memory, to back it up or move it between stores. One
//! JSON object per line, tagged by `type`: each `session` is followed by its `message`s (oldest
//! first), its `summary` and its `embedding`s. Import keeps ids, roles, contents and times; the
//! target store assigns `seq` again, and summaries and embeddings follow the new numbers.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::store::{self, Embedding, Message, NewMessage, Role, Scope, Store, Summary};

/// Messages read or written per store call.
const BATCH: usize = 500;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Line {
    Session {
        id: String,
        user: String,
        title: Option<String>,
        created_at_ms: u64,
        updated_at_ms: u64,
    },
    Message {
        session: String,
        seq: u64,
        role: Role,
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<serde_json::Value>,
        created_at_ms: u64,
    },
    Summary {
        session: String,
        text: String,
        through_seq: u64,
        updated_at_ms: u64,
    },
    Embedding {
        session: String,
        seq: u64,
        model: String,
        vector: Vec<f32>,
    },
}

/// What an export or import did.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub sessions: usize,
    pub messages: usize,
    pub summaries: usize,
    pub embeddings: usize,
    /// Import only: sessions left alone because the target already has them.
    pub skipped_sessions: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
}

/// Writes every session of `user` to `out`.
pub async fn export(store: &dyn Store, user: &str, out: &mut impl Write) -> Result<Counts, Error> {
    let mut counts = Counts::default();
    for session in store.list_sessions(user, usize::MAX).await? {
        let scope = Scope::new(user, &session.id);
        write(
            out,
            &Line::Session {
                id: session.id.clone(),
                user: user.into(),
                title: session.title,
                created_at_ms: session.created_at_ms,
                updated_at_ms: session.updated_at_ms,
            },
        )?;
        counts.sessions += 1;
        for m in all_messages(store, &scope).await? {
            write(
                out,
                &Line::Message {
                    session: session.id.clone(),
                    seq: m.seq,
                    role: m.role,
                    content: m.content,
                    name: m.name,
                    metadata: m.metadata,
                    created_at_ms: m.created_at_ms,
                },
            )?;
            counts.messages += 1;
        }
        if let Some(s) = store.get_summary(&scope).await? {
            write(
                out,
                &Line::Summary {
                    session: session.id.clone(),
                    text: s.text,
                    through_seq: s.through_seq,
                    updated_at_ms: s.updated_at_ms,
                },
            )?;
            counts.summaries += 1;
        }
        for e in store.list_embeddings(&scope).await? {
            write(out, &Line::Embedding { session: session.id.clone(), seq: e.seq, model: e.model, vector: e.vector })?;
            counts.embeddings += 1;
        }
    }
    out.flush()?;
    Ok(counts)
}

fn write(out: &mut impl Write, line: &Line) -> Result<(), Error> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::other)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A session's messages, oldest first.
pub(super) async fn all_messages(store: &dyn Store, scope: &Scope) -> store::Result<Vec<Message>> {
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_messages(scope, before, BATCH).await?;
        let full = page.len() == BATCH;
        before = page.first().map(|m| m.seq);
        pages.push(page);
        if !full {
            break;
        }
    }
    Ok(pages.into_iter().rev().flatten().collect())
}

/// One session being imported.
struct Pending {
    scope: Scope,
    title: Option<String>,
    skip: bool,
    messages: Vec<(u64, NewMessage)>,
    /// Exported seq -> seq in the target store.
    seqs: HashMap<u64, u64>,
}

/// Reads an export and writes it into `store`. Sessions that already exist there are skipped
/// whole, so running an import twice changes nothing.
pub async fn import(store: &dyn Store, input: impl BufRead) -> Result<Counts, Error> {
    let mut counts = Counts::default();
    let mut pending: Option<Pending> = None;
    for (n, text) in input.lines().enumerate() {
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line =
            serde_json::from_str(&text).map_err(|e| Error::Line { line: n + 1, message: e.to_string() })?;
        let wrong = |session: &str| Error::Line {
            line: n + 1,
            message: format!("belongs to session {session:?}, which is not the one being imported"),
        };
        match line {
            Line::Session { id, user, title, .. } => {
                if let Some(done) = pending.take() {
                    finish(store, done, &mut counts).await?;
                }
                let skip = store.get_session(&user, &id).await?.is_some();
                pending = Some(Pending {
                    scope: Scope::new(user, id),
                    title,
                    skip,
                    messages: Vec::new(),
                    seqs: HashMap::new(),
                });
            }
            Line::Message { session, seq, role, content, name, metadata, created_at_ms } => {
                let p = pending.as_mut().filter(|p| p.scope.session == session).ok_or_else(|| wrong(&session))?;
                p.messages.push((seq, NewMessage { role, content, name, metadata, created_at_ms }));
                if p.messages.len() == BATCH {
                    flush(store, p, &mut counts).await?;
                }
            }
            Line::Summary { session, text, through_seq, updated_at_ms } => {
                let p = pending.as_mut().filter(|p| p.scope.session == session).ok_or_else(|| wrong(&session))?;
                flush(store, p, &mut counts).await?;
                if !p.skip {
                    let through_seq = p.seqs.get(&through_seq).copied().unwrap_or(through_seq);
                    store.put_summary(&p.scope, Summary { text, through_seq, updated_at_ms }).await?;
                    counts.summaries += 1;
                }
            }
            Line::Embedding { session, seq, model, vector } => {
                let p = pending.as_mut().filter(|p| p.scope.session == session).ok_or_else(|| wrong(&session))?;
                flush(store, p, &mut counts).await?;
                if let (false, Some(&seq)) = (p.skip, p.seqs.get(&seq)) {
                    store.put_embeddings(&p.scope, vec![Embedding { seq, model, vector }]).await?;
                    counts.embeddings += 1;
                }
            }
        }
    }
    if let Some(done) = pending.take() {
        finish(store, done, &mut counts).await?;
    }
    Ok(counts)
}

async fn flush(store: &dyn Store, p: &mut Pending, counts: &mut Counts) -> Result<(), Error> {
    if p.skip || p.messages.is_empty() {
        p.messages.clear();
        return Ok(());
    }
    let (old, new): (Vec<u64>, Vec<NewMessage>) = std::mem::take(&mut p.messages).into_iter().unzip();
    let first = p.seqs.is_empty();
    let stored = store.append(&p.scope, new, p.title.clone()).await?;
    if first {
        counts.sessions += 1;
    }
    counts.messages += stored.len();
    p.seqs.extend(old.into_iter().zip(stored.iter().map(|m| m.seq)));
    Ok(())
}

async fn finish(store: &dyn Store, mut p: Pending, counts: &mut Counts) -> Result<(), Error> {
    flush(store, &mut p, counts).await?;
    if p.skip {
        counts.skipped_sessions.push(p.scope.session);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    /// Export then import into an empty store reproduces sessions, messages, summaries and
    /// embeddings; importing again skips what exists.
    #[tokio::test]
    async fn round_trip_between_stores() {
        let source = SledStore::temporary().unwrap();
        let scope = Scope::new("ada", "s1");
        let message = |i: u64| NewMessage {
            role: if i.is_multiple_of(2) { Role::User } else { Role::Assistant },
            content: format!("m{i} ünïcode"),
            name: None,
            metadata: None,
            created_at_ms: 1000 + i,
        };
        source.append(&scope, (0..1203).map(message).collect(), Some("first".into())).await.unwrap();
        source
            .put_summary(&scope, Summary { text: "so far".into(), through_seq: 1000, updated_at_ms: 7 })
            .await
            .unwrap();
        source
            .put_embeddings(&scope, vec![Embedding { seq: 3, model: "e".into(), vector: vec![0.5, 0.25] }])
            .await
            .unwrap();
        source.append(&Scope::new("ada", "s2"), vec![message(0)], None).await.unwrap();
        source.append(&Scope::new("bob", "s3"), vec![message(0)], None).await.unwrap();

        let mut out = Vec::new();
        let exported = export(&source, "ada", &mut out).await.unwrap();
        assert_eq!((exported.sessions, exported.messages, exported.summaries, exported.embeddings), (2, 1204, 1, 1));

        let target = SledStore::temporary().unwrap();
        let imported = import(&target, out.as_slice()).await.unwrap();
        assert_eq!((imported.sessions, imported.messages, imported.summaries, imported.embeddings), (2, 1204, 1, 1));
        let messages = all_messages(&target, &scope).await.unwrap();
        assert_eq!(messages.len(), 1203);
        assert_eq!(messages[1202].content, "m1202 ünïcode");
        assert_eq!(messages[5].created_at_ms, 1005);
        assert_eq!(target.get_session("ada", "s1").await.unwrap().unwrap().title.as_deref(), Some("first"));
        assert_eq!(target.get_summary(&scope).await.unwrap().unwrap().through_seq, 1000);
        assert_eq!(target.list_embeddings(&scope).await.unwrap()[0].vector, vec![0.5, 0.25]);
        assert!(target.get_session("ada", "s3").await.unwrap().is_none(), "bob's session is not ada's to export");

        let again = import(&target, out.as_slice()).await.unwrap();
        assert_eq!(again.messages, 0);
        assert_eq!(again.skipped_sessions, ["s1", "s2"]);
    }

    /// A malformed line names its number.
    #[tokio::test]
    async fn bad_lines_are_reported() {
        let target = SledStore::temporary().unwrap();
        let err = import(&target, "{\"type\":\"session\",\"id\":\"x\",\"user\":\"u\",\"title\":null,\"created_at_ms\":1,\"updated_at_ms\":1}\nnot json\n".as_bytes()).await.unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
    }
}
