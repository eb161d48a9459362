//! A loaded memory plugin: the version-neutral API over the `memory-store` export.
//!
//! Like [`ProviderPlugin`](super::ProviderPlugin), each supported WIT version is one variant of
//! [`MemoryPre`], and every call runs on a fresh instance within the plugin's limits.

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::{v0_1_0, v0_2_0};
use super::call::{Guard, Instantiate};
use super::memory_types::{Embedding, NewMessage, Scope, SessionInfo, StoreError, StoredMessage, Summary};
use super::state::HostState;
use super::{Error, Limits};
use crate::capabilities::Capabilities;

/// The pre-instantiated component, by WIT version.
pub(crate) enum MemoryPre {
    V0_1_0(v0_1_0::memory::MemoryPluginPre<HostState>),
    V0_2_0(v0_2_0::memory::MemoryPluginPre<HostState>),
}

impl Instantiate for v0_2_0::memory::MemoryPluginPre<HostState> {
    type Bindings = v0_2_0::memory::MemoryPlugin;
    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Self::Bindings> {
        self.instantiate_async(store).await
    }
}

impl Instantiate for v0_1_0::memory::MemoryPluginPre<HostState> {
    type Bindings = v0_1_0::memory::MemoryPlugin;
    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Self::Bindings> {
        self.instantiate_async(store).await
    }
}

/// A call's outcome: the runtime may fail, or the store may answer with its own error.
pub type StoreResult<T> = Result<Result<T, StoreError>, Error>;

/// A memory plugin ready to serve calls. Cheap to share; each call gets a fresh instance.
pub struct MemoryPlugin {
    pre: MemoryPre,
    guard: Guard,
}

/// Runs one `memory-store` export on a fresh instance: `$call` is the generated method name,
/// followed by its arguments, each as `latest_value => v0_1_0_value` (how to pass it to an
/// older plugin); `$answer` turns an older plugin's `Ok` value into the latest type.
macro_rules! call {
    ($self:ident, $call:ident $(, $arg:expr => $old:expr)* ; $answer:expr) => {
        match &$self.pre {
            MemoryPre::V0_1_0(pre) => {
                let answer = $self
                    .guard
                    .run(pre, async |store, b| b.codexcontinue_plugin_memory_store().$call(store $(, $old)*).await)
                    .await?;
                #[allow(clippy::redundant_closure_call)]
                Ok(answer.map($answer).map_err(StoreError::from))
            }
            MemoryPre::V0_2_0(pre) => {
                $self
                    .guard
                    .run(pre, async |store, b| b.codexcontinue_plugin_memory_store().$call(store $(, $arg)*).await)
                    .await
            }
        }
    };
}

/// The 0.1.0 `memory-store` types.
use v0_1_0::memory::exports::codexcontinue::plugin::memory_store as old;

impl MemoryPlugin {
    pub(crate) fn new(pre: MemoryPre, guard: Guard) -> Self {
        Self { pre, guard }
    }

    /// The capabilities the plugin was granted.
    pub fn capabilities(&self) -> &Arc<Capabilities> {
        &self.guard.caps
    }

    /// The limits it runs under.
    pub fn limits(&self) -> &Limits {
        &self.guard.limits
    }

    /// `init()`: connect and migrate; the staging self-check.
    pub async fn init(&self) -> StoreResult<()> {
        call!(self, call_init; |()| ())
    }

    /// `get-session(session)`.
    pub async fn get_session(&self, session: &str) -> StoreResult<Option<SessionInfo>> {
        call!(self, call_get_session, session => session; |info: Option<old::SessionInfo>| info.map(Into::into))
    }

    /// `list-sessions(user, limit)`.
    pub async fn list_sessions(&self, user: &str, limit: u32) -> StoreResult<Vec<SessionInfo>> {
        call!(self, call_list_sessions, user => user, limit => limit; |infos: Vec<old::SessionInfo>| infos.into_iter().map(Into::into).collect())
    }

    /// `append(scope, messages, title)`.
    pub async fn append(
        &self,
        scope: &Scope,
        messages: &[NewMessage],
        title: Option<&str>,
    ) -> StoreResult<Vec<StoredMessage>> {
        call!(self, call_append, scope => &old::Scope::from(scope), messages => &messages.iter().map(Into::into).collect::<Vec<old::NewMessage>>(), title => title; |rows: Vec<old::StoredMessage>| rows.into_iter().map(Into::into).collect())
    }

    /// `list-messages(scope, before, limit)`.
    pub async fn list_messages(
        &self,
        scope: &Scope,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>> {
        call!(self, call_list_messages, scope => &old::Scope::from(scope), before => before, limit => limit; |rows: Vec<old::StoredMessage>| rows.into_iter().map(Into::into).collect())
    }

    /// `delete-session(scope)`.
    pub async fn delete_session(&self, scope: &Scope) -> StoreResult<bool> {
        call!(self, call_delete_session, scope => &old::Scope::from(scope); |deleted| deleted)
    }

    /// `put-summary(scope, summary)`.
    pub async fn put_summary(&self, scope: &Scope, summary: &Summary) -> StoreResult<()> {
        call!(self, call_put_summary, scope => &old::Scope::from(scope), summary => &old::Summary::from(summary); |()| ())
    }

    /// `get-summary(scope)`.
    pub async fn get_summary(&self, scope: &Scope) -> StoreResult<Option<Summary>> {
        call!(self, call_get_summary, scope => &old::Scope::from(scope); |summary: Option<old::Summary>| summary.map(Into::into))
    }

    /// `put-embeddings(scope, items)`.
    pub async fn put_embeddings(&self, scope: &Scope, items: &[Embedding]) -> StoreResult<()> {
        call!(self, call_put_embeddings, scope => &old::Scope::from(scope), items => &items.iter().map(Into::into).collect::<Vec<old::Embedding>>(); |()| ())
    }

    /// `list-embeddings(scope)`.
    pub async fn list_embeddings(&self, scope: &Scope) -> StoreResult<Vec<Embedding>> {
        call!(self, call_list_embeddings, scope => &old::Scope::from(scope); |items: Vec<old::Embedding>| items.into_iter().map(Into::into).collect())
    }
}
