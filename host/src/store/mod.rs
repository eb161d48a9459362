//! Where conversations live: the [`Store`] trait and its backends. `sled` (on disk, the default)
//! and `memory` (sled in a temporary file, nothing kept) are built in; memory plugins
//! (`redis-memory`, `postgres-memory`) come in through [`PluginStore`], with the same trait.
//!
//! Every call names the user, and session ids are the user's own: two users' sessions named
//! `notes` are two sessions, and no call of one user reaches (or learns of) the other's.

mod group_commit;
mod plugin;
mod sled;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use self::plugin::PluginStore;
pub use self::sled::{Compacted, SledStore};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A message to append; the store assigns its `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub role: Role,
    pub content: String,
    pub name: Option<String>,
    /// Free-form JSON kept with the message (provider, model, usage...).
    pub metadata: Option<serde_json::Value>,
    pub created_at_ms: u64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Position in the session: 1, 2, 3... never reused.
    pub seq: u64,
    pub role: Role,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    pub created_at_ms: u64,
}

/// A conversation and its owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub user: String,
    pub title: Option<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub message_count: u64,
    /// The highest `seq` ever assigned; equals `message_count` until messages can be removed.
    pub last_seq: u64,
}

/// A rolling summary of a session up to `through_seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub text: String,
    pub through_seq: u64,
    pub updated_at_ms: u64,
}

/// The embedding of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    pub seq: u64,
    pub model: String,
    pub vector: Vec<f32>,
}

/// The user and session a call acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub user: String,
    pub session: String,
    /// The session's `created_at_ms` as the caller found it. Writes under such a scope are
    /// refused with [`Error::Gone`] once that session has been deleted (or deleted and created
    /// again under the same id), so a turn in flight or a background job never brings deleted
    /// text back. `None` (a first turn) creates a missing session; [`Scope::NEW`] creates one
    /// and is refused if it exists.
    pub incarnation: Option<u64>,
}

impl Scope {
    pub fn new(user: impl Into<String>, session: impl Into<String>) -> Self {
        Self { user: user.into(), session: session.into(), incarnation: None }
    }

    /// The incarnation of a session that must not exist yet: an append under it creates the
    /// session, or fails with [`Error::Gone`] when another writer created it first.
    pub const NEW: u64 = 0;

    /// A session this append must create; see [`Scope::NEW`].
    pub fn fresh(user: impl Into<String>, session: impl Into<String>) -> Self {
        Self { incarnation: Some(Self::NEW), ..Self::new(user, session) }
    }

    /// The scope of `session` as it exists now: writes stop once it is deleted.
    pub fn of(session: &Session) -> Self {
        Self { user: session.user.clone(), session: session.id.clone(), incarnation: Some(session.created_at_ms) }
    }

    /// A name for the user's session that no other user's session shares, for caches and jobs.
    pub fn key(&self) -> String {
        format!("{}\0{}", self.user, self.session)
    }

    /// Refuses a write into `found` (the stored session, if any) that this scope must not make:
    /// another user's session, or not the incarnation the caller saw.
    pub fn check(&self, found: Option<&Session>) -> Result<()> {
        match (found, self.incarnation) {
            (Some(s), _) if s.user != self.user => {
                Err(Error::Conflict(format!("session {} belongs to another user", self.session)))
            }
            (Some(s), Some(seen)) if s.created_at_ms != seen => Err(self.gone()),
            (None, Some(seen)) if seen != Self::NEW => Err(self.gone()),
            _ => Ok(()),
        }
    }

    fn gone(&self) -> Error {
        Error::Gone(format!("session {} was deleted", self.session))
    }
}

/// Why a store call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The backend cannot be reached or failed to persist.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The session belongs to another user, or a write raced with a conflicting one.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The session this write was meant for was deleted meanwhile.
    #[error("{0}")]
    Gone(String),
    /// Stored data or arguments make no sense.
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A conversation store. Implementations must make `append` atomic and durable before it
/// returns, keep `seq` strictly increasing per session, and refuse cross-user access.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for `/status` (`sled`, `memory`, a plugin id).
    fn name(&self) -> &str;

    /// The user's session `session`.
    async fn get_session(&self, user: &str, session: &str) -> Result<Option<Session>>;

    /// The user's sessions, most recently active first.
    async fn list_sessions(&self, user: &str, limit: usize) -> Result<Vec<Session>>;

    /// Appends `messages` atomically and in order, creating the session for `scope.user` (with
    /// `title`) if it does not exist. Fails with [`Error::Gone`] if the scope names an
    /// incarnation that no longer exists ([`Scope::check`]); nothing is written then.
    async fn append(&self, scope: &Scope, messages: Vec<NewMessage>, title: Option<String>) -> Result<Vec<Message>>;

    /// Up to `limit` messages with `seq < before` (or the newest), oldest first. Empty if the
    /// session does not exist.
    async fn list_messages(&self, scope: &Scope, before: Option<u64>, limit: usize) -> Result<Vec<Message>>;

    /// Removes the session with its messages, summary and embeddings; false if there was none.
    async fn delete_session(&self, scope: &Scope) -> Result<bool>;

    /// Sets the session's summary, unless the stored one reaches further (a larger
    /// `through_seq`): then nothing is written, so hosts summarising at once never move it
    /// backwards. Refused like `append` for a session that is gone.
    async fn put_summary(&self, scope: &Scope, summary: Summary) -> Result<()>;

    async fn get_summary(&self, scope: &Scope) -> Result<Option<Summary>>;

    /// Stores embeddings of the session's messages; refused like `put_summary`.
    async fn put_embeddings(&self, scope: &Scope, items: Vec<Embedding>) -> Result<()>;

    async fn list_embeddings(&self, scope: &Scope) -> Result<Vec<Embedding>>;
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64
}

/// [`now_ms`], but never the same value twice in this process: the time new messages are
/// stamped with. A session's `created_at_ms` is its incarnation ([`Scope::incarnation`]), so
/// a session deleted and created again by this host always differs from its old self. (Under
/// more than a thousand turns a second the stamps run ahead of the clock by that excess.)
pub fn stamp_ms() -> u64 {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = now_ms();
    let previous = LAST.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
    if previous < now {
        return now;
    }
    LAST.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
}
