//! The [`Store`] over a memory plugin (`--store redis-memory`): each call looks the plugin up in
//! the registry, so the store follows hot reloads and rollouts like providers do, and converts
//! between the host's types and the WIT `memory-store` types in both directions.
//!
//! Session ids are per user, but the memory-store interface keys sessions by id alone, so the
//! plugin sees `user/id` ([`key`]; neither part can hold a `/` that would make two pairs meet).
//! Sessions a plugin stored by bare id before then move to their key the first time they are
//! looked up ([`PluginStore::adopt`]).

use std::sync::Arc;

use async_trait::async_trait;

use super::{Embedding, Error, Message, NewMessage, Result, Role, Scope, Session, Store, Summary};
use crate::plugins::{Plugin, Registry, Route};
use crate::runtime::memory_types as wit;
use crate::runtime::types::Role as WitRole;
use crate::runtime::{MemoryPlugin, StoreResult};

/// Runs `$call` (with the memory plugin bound to `$p`) on the version that serves the next
/// request. A failure to serve counts against a candidate version; a read that fails that way
/// on a candidate is retried on the stable version, a write is not (it may have been applied).
macro_rules! call {
    ($self:ident, read = $read:literal, |$p:ident| $call:expr) => {{
        let route = $self.route()?;
        let result = match $self.memory(&route.primary) {
            Ok($p) => $self.finish(&route.primary, $call.await),
            Err(e) => Err(e),
        };
        let failed = matches!(result, Err(Error::Unavailable(_)));
        $self.registry.outcome(&route.primary, !failed);
        match route.backup {
            Some(stable) if failed && $read => {
                let $p = $self.memory(&stable)?;
                $self.finish(&stable, $call.await)
            }
            _ => result,
        }
    }};
}

/// A [`Store`] backed by the memory plugin `id` in `registry`.
pub struct PluginStore {
    id: String,
    registry: Arc<Registry>,
    /// Held while a session stored by bare id moves to its key, so two lookups don't both move it.
    adopting: tokio::sync::Mutex<()>,
}

impl PluginStore {
    /// The store of plugin `id`. Calls fail with [`Error::Unavailable`] while it is not loaded.
    pub fn new(id: impl Into<String>, registry: Arc<Registry>) -> Self {
        Self { id: id.into(), registry, adopting: tokio::sync::Mutex::new(()) }
    }

    /// Refuses a write for an incarnation of the session that is gone. The memory-store
    /// interface has no incarnation, so this check and the write are two calls: a delete
    /// landing between them is the one window left (sled checks inside its transaction).
    async fn still_there(&self, scope: &Scope) -> Result<()> {
        if scope.incarnation.is_none() {
            return Ok(());
        }
        scope.check(self.get_session(&scope.user, &scope.session).await?.as_ref())
    }

    /// Moves `old`, a session stored by bare id before ids were per user, to its key: its
    /// messages, summary and embeddings are copied, then the old one is deleted. A crash
    /// part-way leaves both; the keyed one is found first from then on, and deleting the session
    /// deletes both.
    async fn adopt(&self, old: wit::SessionInfo) -> Result<Option<Session>> {
        let _one_at_a_time = self.adopting.lock().await;
        let user = old.user.clone();
        if let Some(done) = self.get_keyed(&user, &old.id).await? {
            return Ok(Some(done));
        }
        let legacy = wit::Scope { user: user.clone(), session: old.id.clone() };
        let scope = Scope::new(&user, &old.id);
        let messages = call!(self, read = true, |p| p.list_messages(&legacy, None, u32::MAX))?;
        let summary = call!(self, read = true, |p| p.get_summary(&legacy))?;
        let embeddings = call!(self, read = true, |p| p.list_embeddings(&legacy))?;
        let new = to_wit_scope(&scope);
        let messages: Vec<wit::NewMessage> = messages
            .into_iter()
            .map(|m| wit::NewMessage {
                role: m.role,
                content: m.content,
                name: m.name,
                metadata: m.metadata,
                created_at_ms: m.created_at_ms,
            })
            .collect();
        if !messages.is_empty() {
            call!(self, read = false, |p| p.append(&new, &messages, old.title.as_deref()))?;
        }
        if let Some(summary) = summary {
            call!(self, read = false, |p| p.put_summary(&new, &summary))?;
        }
        if !embeddings.is_empty() {
            call!(self, read = false, |p| p.put_embeddings(&new, &embeddings))?;
        }
        call!(self, read = false, |p| p.delete_session(&legacy))?;
        self.get_keyed(&user, &old.id).await
    }

    async fn get_keyed(&self, user: &str, session: &str) -> Result<Option<Session>> {
        let key = key(user, session);
        Ok(call!(self, read = true, |p| p.get_session(&key))?.map(from_wit_session))
    }

    /// The route to the plugin's serving version(s).
    fn route(&self) -> Result<Route> {
        self.registry
            .route(&self.id)
            .ok_or_else(|| Error::Unavailable(format!("memory plugin {} is not loaded", self.id)))
    }

    fn memory<'a>(&self, plugin: &'a Plugin) -> Result<&'a MemoryPlugin> {
        plugin.memory().ok_or_else(|| {
            Error::Unavailable(format!(
                "plugin {} is a {} plugin, not a store",
                self.id,
                plugin.manifest.kind.world().as_str()
            ))
        })
    }

    /// Maps a call's outcome into the host's errors.
    fn finish<T>(&self, plugin: &Plugin, result: StoreResult<T>) -> Result<T> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(from_wit_error(&plugin.label().to_string(), e)),
            // Runtime errors name the plugin already.
            Err(e) => Err(Error::Unavailable(e.to_string())),
        }
    }
}

fn from_wit_error(plugin: &str, e: wit::StoreError) -> Error {
    match e {
        wit::StoreError::Unavailable(m) => Error::Unavailable(format!("{plugin}: {m}")),
        wit::StoreError::Conflict(m) => Error::Conflict(m),
        wit::StoreError::Invalid(m) => Error::Invalid(m),
        wit::StoreError::Other(m) => Error::Other(format!("{plugin}: {m}")),
    }
}

fn to_wit_role(role: Role) -> WitRole {
    match role {
        Role::System => WitRole::System,
        Role::User => WitRole::User,
        Role::Assistant => WitRole::Assistant,
        Role::Tool => WitRole::Tool,
    }
}

fn from_wit_role(role: WitRole) -> Role {
    match role {
        WitRole::System => Role::System,
        WitRole::User => Role::User,
        WitRole::Assistant => Role::Assistant,
        WitRole::Tool => Role::Tool,
    }
}

/// What the plugin calls the user's session `session`.
fn key(user: &str, session: &str) -> String {
    format!("{user}/{session}")
}

fn to_wit_scope(scope: &Scope) -> wit::Scope {
    wit::Scope { user: scope.user.clone(), session: key(&scope.user, &scope.session) }
}

fn to_wit_message(m: NewMessage) -> wit::NewMessage {
    wit::NewMessage {
        role: to_wit_role(m.role),
        content: m.content,
        name: m.name,
        metadata: m.metadata.map(|v| v.to_string()),
        created_at_ms: m.created_at_ms,
    }
}

fn from_wit_message(m: wit::StoredMessage) -> Result<Message> {
    let metadata = m
        .metadata
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| Error::Invalid(format!("message {} has metadata that is not JSON: {e}", m.seq)))?;
    Ok(Message {
        seq: m.seq,
        role: from_wit_role(m.role),
        content: m.content,
        name: m.name,
        metadata,
        created_at_ms: m.created_at_ms,
    })
}

fn from_wit_session(s: wit::SessionInfo) -> Session {
    // A session stored by bare id before ids were per user keeps it.
    let id = s.id.strip_prefix(&format!("{}/", s.user)).map_or_else(|| s.id.clone(), str::to_string);
    Session {
        id,
        user: s.user,
        title: s.title,
        created_at_ms: s.created_at_ms,
        updated_at_ms: s.updated_at_ms,
        message_count: s.message_count,
        // Messages are never removed one by one, so the last seq is the count.
        last_seq: s.message_count,
    }
}

fn to_wit_summary(s: Summary) -> wit::Summary {
    wit::Summary { text: s.text, through_seq: s.through_seq, updated_at_ms: s.updated_at_ms }
}

fn from_wit_summary(s: wit::Summary) -> Summary {
    Summary { text: s.text, through_seq: s.through_seq, updated_at_ms: s.updated_at_ms }
}

fn to_wit_embedding(e: Embedding) -> wit::Embedding {
    wit::Embedding { seq: e.seq, model: e.model, vector: e.vector }
}

fn from_wit_embedding(e: wit::Embedding) -> Embedding {
    Embedding { seq: e.seq, model: e.model, vector: e.vector }
}

/// `usize` limits become the WIT's `u32`; nobody pages through four billion items.
fn limit(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[async_trait]
impl Store for PluginStore {
    fn name(&self) -> &str {
        &self.id
    }

    async fn get_session(&self, user: &str, session: &str) -> Result<Option<Session>> {
        if let Some(found) = self.get_keyed(user, session).await? {
            return Ok(Some(found));
        }
        match call!(self, read = true, |p| p.get_session(session))? {
            Some(old) if old.user == user && !old.id.contains('/') => self.adopt(old).await,
            _ => Ok(None),
        }
    }

    async fn list_sessions(&self, user: &str, n: usize) -> Result<Vec<Session>> {
        let found = call!(self, read = true, |p| p.list_sessions(user, limit(n)))?;
        let mut sessions: Vec<Session> = Vec::with_capacity(found.len());
        for session in found.into_iter().map(from_wit_session) {
            // Both copies of a session whose move was cut short: the keyed one counts.
            if !sessions.iter().any(|s| s.id == session.id) {
                sessions.push(session);
            }
        }
        Ok(sessions)
    }

    async fn append(&self, scope: &Scope, messages: Vec<NewMessage>, title: Option<String>) -> Result<Vec<Message>> {
        self.still_there(scope).await?;
        let scope = to_wit_scope(scope);
        let messages: Vec<_> = messages.into_iter().map(to_wit_message).collect();
        let stored = call!(self, read = false, |p| p.append(&scope, &messages, title.as_deref()))?;
        stored.into_iter().map(from_wit_message).collect()
    }

    async fn list_messages(&self, scope: &Scope, before: Option<u64>, n: usize) -> Result<Vec<Message>> {
        let scope = to_wit_scope(scope);
        let found = call!(self, read = true, |p| p.list_messages(&scope, before, limit(n)))?;
        found.into_iter().map(from_wit_message).collect()
    }

    async fn delete_session(&self, scope: &Scope) -> Result<bool> {
        let keyed = to_wit_scope(scope);
        let deleted = call!(self, read = false, |p| p.delete_session(&keyed))?;
        // And a copy by bare id that a cut-short move left behind, so it cannot come back.
        let legacy = wit::Scope { user: scope.user.clone(), session: scope.session.clone() };
        let left_behind = match call!(self, read = false, |p| p.delete_session(&legacy)) {
            // Another user's session by that bare id is theirs to keep.
            Err(Error::Conflict(_)) => false,
            other => other?,
        };
        Ok(deleted || left_behind)
    }

    async fn put_summary(&self, scope: &Scope, summary: Summary) -> Result<()> {
        self.still_there(scope).await?;
        let scope = to_wit_scope(scope);
        let summary = to_wit_summary(summary);
        call!(self, read = false, |p| p.put_summary(&scope, &summary))
    }

    async fn get_summary(&self, scope: &Scope) -> Result<Option<Summary>> {
        let scope = to_wit_scope(scope);
        Ok(call!(self, read = true, |p| p.get_summary(&scope))?.map(from_wit_summary))
    }

    async fn put_embeddings(&self, scope: &Scope, items: Vec<Embedding>) -> Result<()> {
        self.still_there(scope).await?;
        let scope = to_wit_scope(scope);
        let items: Vec<_> = items.into_iter().map(to_wit_embedding).collect();
        call!(self, read = false, |p| p.put_embeddings(&scope, &items))
    }

    async fn list_embeddings(&self, scope: &Scope) -> Result<Vec<Embedding>> {
        let scope = to_wit_scope(scope);
        let found = call!(self, read = true, |p| p.list_embeddings(&scope))?;
        Ok(found.into_iter().map(from_wit_embedding).collect())
    }
}
