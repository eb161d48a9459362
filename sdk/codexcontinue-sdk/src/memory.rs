//! The [`MemoryStore`] trait memory plugins implement and the [`export_memory_store!`](crate::export_memory_store) macro that
//! wires it to the generated `memory-store` export. Backends reach their database through the
//! [`redis`](crate::redis) and [`postgres`](crate::postgres) capabilities.

use std::marker::PhantomData;

use crate::bindings::memory::exports::codexcontinue::plugin::memory_store::Guest;
use crate::{Embedding, NewMessage, Role, Scope, SessionInfo, StoreError, StoredMessage, Summary};

impl StoredMessage {
    /// `message` as stored at position `seq`.
    pub fn new(seq: u64, message: NewMessage) -> Self {
        Self {
            seq,
            role: message.role,
            content: message.content,
            name: message.name,
            metadata: message.metadata,
            created_at_ms: message.created_at_ms,
        }
    }
}

/// The role spelled `name` (`system`, `user`, `assistant`, `tool`): how stores read back what
/// [`vendor::role_name`](crate::vendor::role_name) wrote.
pub fn parse_role(name: &str) -> Option<Role> {
    [Role::System, Role::User, Role::Assistant, Role::Tool].into_iter().find(|r| crate::vendor::role_name(*r) == name)
}

/// Long-lived conversation memory, exported with [`export_memory_store!`](crate::export_memory_store).
///
/// Every call names the user through its [`Scope`]; a store must refuse (with
/// [`StoreError::Conflict`]) to touch a session another user owns. Methods are static because
/// the host creates a fresh instance of the component for every call.
pub trait MemoryStore: 'static {
    /// Called once when the plugin is staged: connect and apply schema migrations. The default
    /// does nothing.
    fn init() -> Result<(), StoreError> {
        Ok(())
    }

    /// A session by id, whoever owns it (the host checks ownership).
    fn get_session(session: String) -> Result<Option<SessionInfo>, StoreError>;

    /// Up to `limit` of the user's sessions, most recently active first.
    fn list_sessions(user: String, limit: u32) -> Result<Vec<SessionInfo>, StoreError>;

    /// Appends messages atomically, in order, assigning `seq` numbers and creating the session
    /// for `scope.user` (with `title`, if given) when it does not exist.
    fn append(scope: Scope, messages: Vec<NewMessage>, title: Option<String>)
    -> Result<Vec<StoredMessage>, StoreError>;

    /// Up to `limit` messages with `seq < before` (or the newest, if `before` is none), oldest
    /// first.
    fn list_messages(scope: Scope, before: Option<u64>, limit: u32) -> Result<Vec<StoredMessage>, StoreError>;

    /// Removes the session with its messages, summary and embeddings; false if it did not exist.
    fn delete_session(scope: Scope) -> Result<bool, StoreError>;

    /// Replaces the session's rolling summary, unless the stored one has a larger
    /// `through_seq`: then nothing is written and the call succeeds (check and write in one
    /// atomic step, so that two hosts summarising at once never move it backwards).
    fn put_summary(scope: Scope, summary: Summary) -> Result<(), StoreError>;

    /// The session's rolling summary, if one was stored.
    fn get_summary(scope: Scope) -> Result<Option<Summary>, StoreError>;

    /// Stores message embeddings, replacing any earlier one for the same `seq` and model.
    fn put_embeddings(scope: Scope, items: Vec<Embedding>) -> Result<(), StoreError>;

    /// All embeddings stored for the session.
    fn list_embeddings(scope: Scope) -> Result<Vec<Embedding>, StoreError>;
}

/// Adapts a [`MemoryStore`] to the generated `Guest` trait; named only by
/// [`export_memory_store!`](crate::export_memory_store).
#[doc(hidden)]
pub struct MemoryStoreExport<T>(PhantomData<T>);

impl<T: MemoryStore> Guest for MemoryStoreExport<T> {
    fn init() -> Result<(), StoreError> {
        T::init()
    }

    fn get_session(session: String) -> Result<Option<SessionInfo>, StoreError> {
        T::get_session(session)
    }

    fn list_sessions(user: String, limit: u32) -> Result<Vec<SessionInfo>, StoreError> {
        T::list_sessions(user, limit)
    }

    fn append(
        scope: Scope,
        messages: Vec<NewMessage>,
        title: Option<String>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        T::append(scope, messages, title)
    }

    fn list_messages(scope: Scope, before: Option<u64>, limit: u32) -> Result<Vec<StoredMessage>, StoreError> {
        T::list_messages(scope, before, limit)
    }

    fn delete_session(scope: Scope) -> Result<bool, StoreError> {
        T::delete_session(scope)
    }

    fn put_summary(scope: Scope, summary: Summary) -> Result<(), StoreError> {
        T::put_summary(scope, summary)
    }

    fn get_summary(scope: Scope) -> Result<Option<Summary>, StoreError> {
        T::get_summary(scope)
    }

    fn put_embeddings(scope: Scope, items: Vec<Embedding>) -> Result<(), StoreError> {
        T::put_embeddings(scope, items)
    }

    fn list_embeddings(scope: Scope) -> Result<Vec<Embedding>, StoreError> {
        T::list_embeddings(scope)
    }
}

/// Exports a [`MemoryStore`] implementation as the component's
/// `codexcontinue:plugin/memory-store`.
///
/// Call it once per plugin crate, at the top level: `export_memory_store!(MyStore);`. The
/// exports exist only when compiling for `wasm32`, so the crate still builds and tests natively.
#[macro_export]
macro_rules! export_memory_store {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // The generated export macro takes a plain identifier, hence the alias.
            type __CodexContinueMemoryStore = $crate::__private::MemoryStoreExport<$ty>;
            $crate::bindings::memory::export_memory_world!(
                __CodexContinueMemoryStore with_types_in $crate::bindings::memory
            );
        };
        // Native builds (unit tests) export nothing: the WIT export names are not valid native
        // symbols. Naming a method still checks the trait bound and keeps the type in use.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::MemoryStore>::init;
        };
    };
}
