//! The embedded store: sled on disk (the default), or sled in a temporary file for
//! `--store memory`.
//!
//! Durability: every write is flushed (fsync) before the call returns, so a reply the client
//! has seen survives a crash or `kill -9` of the server; concurrent writes share flushes
//! (`group_commit.rs`). The temporary mode skips the flush.
//!
//! Layout, one tree each, every key starting with the session's key (user \0 id: ids are per
//! user): `user_sessions` (key -> session), `recent` (user \0 inverted `updated_at_ms` as
//! big-endian u64, id -> (), so a user's sessions list newest first without reading the others),
//! `user_messages` and `user_embeddings` (key \0 seq as big-endian u64 -> JSON, so keys sort by
//! seq), `user_summaries` (key -> JSON).
//!
//! Older stores are migrated on open: before per-user ids the trees were `sessions`,
//! `messages`, `summaries` and `embeddings`, keyed by id alone; before `recent` there was
//! `by_user` (user \0 id).

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::group_commit::GroupCommit;
use super::{Embedding, Error, Message, NewMessage, Result, Scope, Session, Store, Summary};

/// What [`SledStore::compact`] did.
#[derive(Debug, Clone, Copy)]
pub struct Compacted {
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// The total size of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// How long opening waits for the directory's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A [`Store`] on sled.
pub struct SledStore {
    sessions: sled::Tree,
    recent: sled::Tree,
    messages: sled::Tree,
    summaries: sled::Tree,
    embeddings: sled::Tree,
    /// The flusher of a durable store; none for a temporary one.
    commit: Option<GroupCommit>,
    name: &'static str,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Unavailable(format!("{}: {e}", dir.display())))?;
        // sled's own worker threads keep the directory's lock for a moment after the last handle
        // of a closed store is dropped, so a restart in the same process waits briefly for it.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::Config::new().path(dir).open() {
                Ok(db) => break db,
                Err(e) if e.to_string().contains("could not acquire lock") => {
                    if std::time::Instant::now() >= deadline {
                        return Err(Error::Unavailable(format!(
                            "{} is in use by another process (is another codexcontinue running?)",
                            dir.display()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(Error::Unavailable(format!("{}: {e}", dir.display()))),
            }
        };
        Self::with_db(db, true, "sled")
    }

    /// A store that keeps nothing once dropped.
    pub fn temporary() -> Result<Self> {
        let db = sled::Config::new().temporary(true).open().map_err(unavailable)?;
        Self::with_db(db, false, "memory")
    }

    fn with_db(db: sled::Db, durable: bool, name: &'static str) -> Result<Self> {
        migrate_to_user_keys(&db)?;
        let tree = |n: &str| db.open_tree(n).map_err(unavailable);
        let (sessions, recent) = (tree(SESSIONS)?, tree("recent")?);
        if recent.is_empty() && !sessions.is_empty() {
            // One atomic batch: a crash part-way leaves `recent` empty, and it is rebuilt again.
            let mut batch = sled::Batch::default();
            for value in sessions.iter().values() {
                batch.insert(recent_key(&decode::<Session>(&value.map_err(unavailable)?)?), &[]);
            }
            recent.apply_batch(batch).map_err(unavailable)?;
            db.flush().map_err(unavailable)?;
        }
        if has_tree(&db, "by_user") {
            db.drop_tree("by_user").map_err(unavailable)?;
        }
        Ok(Self {
            sessions,
            recent,
            messages: tree(MESSAGES)?,
            summaries: tree(SUMMARIES)?,
            embeddings: tree(EMBEDDINGS)?,
            commit: if durable { Some(GroupCommit::start(db)?) } else { None },
            name,
        })
    }

    /// Rewrites the database in `dir` into a fresh one, so that deleted conversations no longer
    /// sit in its files: sled marks deleted data free and overwrites it only as space is reused.
    /// The server must be stopped (sled locks the directory). The new copy is complete and
    /// flushed before the old files are removed; a crash in between leaves `<dir>.old` beside it.
    pub fn compact(dir: &Path) -> Result<Compacted> {
        let io = |what: &str, e: std::io::Error| Error::Unavailable(format!("{what}: {e}"));
        if !dir.join("conf").is_file() {
            return Err(Error::Unavailable(format!("{}: no sled store here", dir.display())));
        }
        let fresh = dir.with_extension("compacting");
        let old = dir.with_extension("old");
        for leftover in [&fresh, &old] {
            if leftover.exists() {
                std::fs::remove_dir_all(leftover).map_err(|e| io(&leftover.display().to_string(), e))?;
            }
        }
        let bytes_before = dir_size(dir);
        {
            let open = |path: &Path| {
                sled::Config::new()
                    .path(path)
                    .open()
                    .map_err(|e| Error::Unavailable(format!("{}: {e}", path.display())))
            };
            let current = open(dir)?;
            let copy = open(&fresh)?;
            copy.import(current.export());
            copy.flush().map_err(unavailable)?;
        }
        std::fs::rename(dir, &old).map_err(|e| io(&dir.display().to_string(), e))?;
        std::fs::rename(&fresh, dir).map_err(|e| io(&fresh.display().to_string(), e))?;
        std::fs::remove_dir_all(&old).map_err(|e| io(&old.display().to_string(), e))?;
        Ok(Compacted { bytes_before, bytes_after: dir_size(dir) })
    }

    async fn flush(&self) -> Result<()> {
        match &self.commit {
            Some(commit) => commit.flush().await,
            None => Ok(()),
        }
    }
}

const SESSIONS: &str = "user_sessions";
const MESSAGES: &str = "user_messages";
const SUMMARIES: &str = "user_summaries";
const EMBEDDINGS: &str = "user_embeddings";

fn has_tree(db: &sled::Db, name: &str) -> bool {
    db.tree_names().iter().any(|n| n.as_ref() == name.as_bytes())
}

/// Moves a store from before per-user session ids (trees keyed by id alone) to keys that start
/// with the owner. Idempotent: the old `sessions` tree goes last, so a crash part-way runs the
/// move again on the next open, rewriting the same keys.
fn migrate_to_user_keys(db: &sled::Db) -> Result<()> {
    if !has_tree(db, "sessions") {
        return Ok(());
    }
    let tree = |n: &str| db.open_tree(n).map_err(unavailable);
    let old_sessions = tree("sessions")?;
    let mut owners: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for entry in old_sessions.iter() {
        let (id, value) = entry.map_err(unavailable)?;
        owners.insert(id.to_vec(), decode::<Session>(&value)?.user.into_bytes());
    }
    let owned = |id: &[u8]| owners.get(id).map(|user| [user.as_slice(), b"\0", id].concat());
    for (old, new, per_seq) in [
        ("messages", MESSAGES, true),
        ("embeddings", EMBEDDINGS, true),
        ("summaries", SUMMARIES, false),
        ("sessions", SESSIONS, false),
    ] {
        let (old_tree, new_tree) = (tree(old)?, tree(new)?);
        let mut batch = sled::Batch::default();
        for entry in old_tree.iter() {
            let (key, value) = entry.map_err(unavailable)?;
            // Per-seq keys are id \0 seq (8 bytes); a record of no session is left behind.
            let (id, rest) = if per_seq { key.split_at(key.len().saturating_sub(9)) } else { (&key[..], &[][..]) };
            if let Some(prefix) = owned(id) {
                batch.insert([prefix.as_slice(), rest].concat(), value);
            }
        }
        new_tree.apply_batch(batch).map_err(unavailable)?;
    }
    db.flush().map_err(unavailable)?;
    for old in ["messages", "embeddings", "summaries", "sessions"] {
        db.drop_tree(old).map_err(unavailable)?;
    }
    db.flush().map_err(unavailable)?;
    Ok(())
}

/// Inside a transaction: the scope's session exists, is the user's and is the incarnation the
/// scope saw.
fn live(sessions: &TransactionalTree, scope: &Scope) -> Result<(), ConflictableTransactionError<Error>> {
    let abort = ConflictableTransactionError::Abort;
    let key = session_key(&scope.user, &scope.session).map_err(abort)?;
    let found = sessions.get(key)?.map(|b| decode::<Session>(&b)).transpose().map_err(abort)?;
    match found {
        None if scope.incarnation.is_none() => {
            Err(abort(Error::Conflict(format!("no session {} for this user", scope.session))))
        }
        None => Err(abort(Error::Gone(format!("session {} was deleted", scope.session)))),
        found => scope.check(found.as_ref()).map_err(abort),
    }
}

fn unavailable(e: sled::Error) -> Error {
    Error::Unavailable(e.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Other(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Invalid(format!("corrupt record: {e}")))
}

/// Ids and user names become key parts separated by NUL, so they may not contain one.
fn check_key(part: &str) -> Result<()> {
    if part.is_empty() || part.contains('\0') {
        return Err(Error::Invalid("ids must be non-empty and contain no NUL".into()));
    }
    Ok(())
}

/// A session's key: its user and id, which may not hold a NUL.
fn session_key(user: &str, session: &str) -> Result<Vec<u8>> {
    check_key(user)?;
    check_key(session)?;
    Ok([user.as_bytes(), b"\0", session.as_bytes()].concat())
}

/// The key of one of a session's messages or embeddings.
fn seq_key(session_key: &[u8], seq: u64) -> Vec<u8> {
    [session_key, b"\0", &seq.to_be_bytes()].concat()
}

/// The session's place in its user's `recent` listing, which changes with every append.
fn recent_key(session: &Session) -> Vec<u8> {
    [session.user.as_bytes(), b"\0", &(u64::MAX - session.updated_at_ms).to_be_bytes(), session.id.as_bytes()].concat()
}

fn flatten<T>(result: std::result::Result<T, TransactionError<Error>>) -> Result<T> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => unavailable(e),
    })
}

#[async_trait]
impl Store for SledStore {
    fn name(&self) -> &str {
        self.name
    }

    async fn get_session(&self, user: &str, session: &str) -> Result<Option<Session>> {
        self.sessions.get(session_key(user, session)?).map_err(unavailable)?.map(|b| decode(&b)).transpose()
    }

    async fn list_sessions(&self, user: &str, limit: usize) -> Result<Vec<Session>> {
        check_key(user)?;
        let prefix = [user.as_bytes(), b"\0"].concat();
        let mut sessions: Vec<Session> = Vec::new();
        // Newest first; read on past `limit` only through sessions as recent as the last one
        // taken, which then order by id.
        for entry in self.recent.scan_prefix(&prefix).keys() {
            let key = entry.map_err(unavailable)?;
            let (stamp, id) = key[prefix.len()..].split_at(8);
            let updated_at_ms =
                u64::MAX - u64::from_be_bytes(stamp.try_into().map_err(|_| Error::Invalid("recent key".into()))?);
            if sessions.len() >= limit && sessions.last().is_none_or(|s| s.updated_at_ms != updated_at_ms) {
                break;
            }
            // A session deleted or written since the key was read is skipped or read as it is.
            if let Some(bytes) = self.sessions.get([prefix.as_slice(), id].concat()).map_err(unavailable)? {
                sessions.push(decode::<Session>(&bytes)?);
            }
        }
        sessions.sort_by(|a, b| b.updated_at_ms.cmp(&a.updated_at_ms).then_with(|| b.id.cmp(&a.id)));
        sessions.truncate(limit);
        Ok(sessions)
    }

    async fn append(&self, scope: &Scope, messages: Vec<NewMessage>, title: Option<String>) -> Result<Vec<Message>> {
        let key = session_key(&scope.user, &scope.session)?;
        let stored =
            flatten((&self.sessions, &self.recent, &self.messages).transaction(|(sessions, recent, tx_messages)| {
                let abort = ConflictableTransactionError::Abort;
                let found = sessions.get(&key)?.map(|b| decode::<Session>(&b)).transpose().map_err(abort)?;
                scope.check(found.as_ref()).map_err(abort)?;
                let mut session = match found {
                    Some(session) => {
                        recent.remove(recent_key(&session))?;
                        session
                    }
                    None => Session {
                        id: scope.session.clone(),
                        user: scope.user.clone(),
                        title: title.clone(),
                        created_at_ms: messages.first().map_or_else(super::now_ms, |m| m.created_at_ms),
                        updated_at_ms: 0,
                        message_count: 0,
                        last_seq: 0,
                    },
                };
                let mut stored = Vec::with_capacity(messages.len());
                for m in &messages {
                    session.last_seq += 1;
                    let message = Message {
                        seq: session.last_seq,
                        role: m.role,
                        content: m.content.clone(),
                        name: m.name.clone(),
                        metadata: m.metadata.clone(),
                        created_at_ms: m.created_at_ms,
                    };
                    tx_messages.insert(seq_key(&key, message.seq), encode(&message).map_err(abort)?)?;
                    session.updated_at_ms = session.updated_at_ms.max(m.created_at_ms);
                    stored.push(message);
                }
                session.message_count += messages.len() as u64;
                sessions.insert(key.as_slice(), encode(&session).map_err(abort)?)?;
                recent.insert(recent_key(&session), &[])?;
                Ok(stored)
            }))?;
        self.flush().await?;
        Ok(stored)
    }

    async fn list_messages(&self, scope: &Scope, before: Option<u64>, limit: usize) -> Result<Vec<Message>> {
        // Keys start with the user: nothing under them belongs to anyone else, and a deleted
        // session left nothing behind.
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = session_key(&scope.user, &scope.session)?;
        let (start, end) = (seq_key(&key, 1), seq_key(&key, before.unwrap_or(u64::MAX)));
        let mut page = self
            .messages
            .range(start..end)
            .values()
            .rev()
            .take(limit)
            .map(|v| decode::<Message>(&v.map_err(unavailable)?))
            .collect::<Result<Vec<_>>>()?;
        page.reverse();
        Ok(page)
    }

    async fn delete_session(&self, scope: &Scope) -> Result<bool> {
        let key = session_key(&scope.user, &scope.session)?;
        // One transaction: the session, its listing entry, and every key it could have used
        // (read inside it, so an append that ran meanwhile is covered too).
        let deleted =
            flatten((&self.sessions, &self.recent, &self.messages, &self.summaries, &self.embeddings).transaction(
                |(sessions, recent, messages, summaries, embeddings)| {
                    let abort = ConflictableTransactionError::Abort;
                    let Some(bytes) = sessions.get(&key)? else { return Ok(false) };
                    let session = decode::<Session>(&bytes).map_err(abort)?;
                    sessions.remove(key.as_slice())?;
                    recent.remove(recent_key(&session))?;
                    summaries.remove(key.as_slice())?;
                    for seq in 1..=session.last_seq {
                        messages.remove(seq_key(&key, seq))?;
                        embeddings.remove(seq_key(&key, seq))?;
                    }
                    Ok(true)
                },
            ))?;
        if deleted {
            self.flush().await?;
        }
        Ok(deleted)
    }

    async fn put_summary(&self, scope: &Scope, summary: Summary) -> Result<()> {
        let key = session_key(&scope.user, &scope.session)?;
        let (through_seq, summary) = (summary.through_seq, encode(&summary)?);
        let abort = ConflictableTransactionError::Abort;
        // Checked and written in one transaction, so a delete comes wholly before or after.
        flatten((&self.sessions, &self.summaries).transaction(|(sessions, summaries)| {
            live(sessions, scope)?;
            let stored = summaries.get(&key)?.map(|b| decode::<Summary>(&b)).transpose().map_err(abort)?;
            if stored.is_none_or(|s| s.through_seq <= through_seq) {
                summaries.insert(key.as_slice(), summary.as_slice())?;
            }
            Ok(())
        }))?;
        self.flush().await
    }

    async fn get_summary(&self, scope: &Scope) -> Result<Option<Summary>> {
        self.summaries
            .get(session_key(&scope.user, &scope.session)?)
            .map_err(unavailable)?
            .map(|b| decode(&b))
            .transpose()
    }

    async fn put_embeddings(&self, scope: &Scope, items: Vec<Embedding>) -> Result<()> {
        let key = session_key(&scope.user, &scope.session)?;
        let items: Vec<(Vec<u8>, Vec<u8>)> =
            items.iter().map(|item| Ok((seq_key(&key, item.seq), encode(item)?))).collect::<Result<_>>()?;
        flatten((&self.sessions, &self.embeddings).transaction(|(sessions, embeddings)| {
            live(sessions, scope)?;
            for (key, value) in &items {
                embeddings.insert(key.as_slice(), value.as_slice())?;
            }
            Ok(())
        }))?;
        self.flush().await
    }

    async fn list_embeddings(&self, scope: &Scope) -> Result<Vec<Embedding>> {
        let prefix = [session_key(&scope.user, &scope.session)?.as_slice(), b"\0"].concat();
        self.embeddings.scan_prefix(prefix).values().map(|v| decode(&v.map_err(unavailable)?)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_in_use_is_refused_and_free_again_once_closed() {
        let dir = tempfile::tempdir().unwrap();
        let first = SledStore::open(dir.path()).unwrap();
        let Err(Error::Unavailable(e)) = SledStore::open(dir.path()) else { panic!("opened twice") };
        assert!(e.contains("in use by another process"), "{e}");
        drop(first);
        SledStore::open(dir.path()).expect("reopens once the first store is gone");
    }

    fn session(id: &str, user: &str, updated_at_ms: u64) -> Session {
        Session {
            id: id.into(),
            user: user.into(),
            title: None,
            created_at_ms: 1,
            updated_at_ms,
            message_count: 0,
            last_seq: 0,
        }
    }

    /// A store from before the `recent` listing and per-user ids (trees keyed by id alone)
    /// opens with its sessions listed, newest first and ties by id descending, their messages,
    /// summaries and embeddings moved to the owner's keys, and without the old trees.
    #[tokio::test]
    async fn stores_from_before_the_recent_listing_and_user_keys_are_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let tree = |name: &str| db.open_tree(name).unwrap();
            let (sessions, by_user, messages) = (tree("sessions"), tree("by_user"), tree("messages"));
            let (summaries, embeddings) = (tree("summaries"), tree("embeddings"));
            for s in
                [session("a", "ada", 10), session("b", "ada", 30), session("c", "ada", 30), session("d", "bob", 20)]
            {
                sessions.insert(s.id.as_bytes(), encode(&s).unwrap()).unwrap();
                by_user.insert([s.user.as_bytes(), b"\0", s.id.as_bytes()].concat(), &[]).unwrap();
            }
            let old_seq_key = |id: &str, seq: u64| [id.as_bytes(), b"\0", &seq.to_be_bytes()].concat();
            let message = |seq, content: &str| Message {
                seq,
                role: crate::store::Role::User,
                content: content.into(),
                name: None,
                metadata: None,
                created_at_ms: 5,
            };
            for (seq, content) in [(1, "first"), (2, "second")] {
                messages.insert(old_seq_key("a", seq), encode(&message(seq, content)).unwrap()).unwrap();
            }
            let embedding = Embedding { seq: 2, model: "m".into(), vector: vec![1.0] };
            embeddings.insert(old_seq_key("a", 2), encode(&embedding).unwrap()).unwrap();
            let summary = Summary { text: "so far".into(), through_seq: 1, updated_at_ms: 6 };
            summaries.insert(b"a", encode(&summary).unwrap()).unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let ids = |sessions: Vec<Session>| sessions.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(store.list_sessions("ada", 10).await.unwrap()), ["c", "b", "a"]);
        assert_eq!(ids(store.list_sessions("ada", 1).await.unwrap()), ["c"], "ties read on, then cut");
        assert_eq!(ids(store.list_sessions("bob", 10).await.unwrap()), ["d"]);
        let ada = Scope::new("ada", "a");
        let contents = store.list_messages(&ada, None, 10).await.unwrap().into_iter().map(|m| m.content);
        assert_eq!(contents.collect::<Vec<_>>(), ["first", "second"]);
        assert_eq!(store.get_summary(&ada).await.unwrap().unwrap().text, "so far");
        assert_eq!(store.list_embeddings(&ada).await.unwrap().len(), 1);
        assert!(store.get_session("bob", "a").await.unwrap().is_none(), "ids are per user");
        drop(store);
        // sled's threads let go of the directory's lock shortly after the last handle.
        let reopen = || sled::Config::new().path(dir.path()).open();
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match reopen() {
                Ok(db) => break db,
                Err(e) if std::time::Instant::now() >= deadline => panic!("{e}"),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        for old in ["by_user", "sessions", "messages", "summaries", "embeddings"] {
            assert!(!has_tree(&db, old), "{old} is gone");
        }
    }
}
