//! A loaded provider plugin: the version-neutral API the rest of the host calls.
//!
//! Each supported WIT version is one variant of [`ProviderPre`]; every method matches on it. An
//! older plugin gets its arguments converted down and its answers converted into the latest types
//! here (with the `From` impls in `bindings::v0_1_0`) and nowhere else.

use std::sync::Arc;

use tokio::sync::mpsc;
use wasmtime::Store;
use wasmtime::component::Resource;

use super::bindings::{v0_1_0, v0_2_0};
use super::call::{Guard, Instantiate};
use super::state::HostState;
use super::stream::Sink;
use super::types::{
    ChatRequest, ChatResponse, EmbedRequest, Embeddings, ModelInfo, ProviderError, ProviderInfo, StreamEvent,
};
use super::{Error, Limits, Wit};
use crate::capabilities::Capabilities;

/// The pre-instantiated component, by WIT version.
pub(crate) enum ProviderPre {
    V0_1_0(v0_1_0::provider::ProviderPluginPre<HostState>),
    V0_2_0(v0_2_0::provider::ProviderPluginPre<HostState>),
}

impl Instantiate for v0_1_0::provider::ProviderPluginPre<HostState> {
    type Bindings = v0_1_0::provider::ProviderPlugin;
    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Self::Bindings> {
        self.instantiate_async(store).await
    }
}

impl Instantiate for v0_2_0::provider::ProviderPluginPre<HostState> {
    type Bindings = v0_2_0::provider::ProviderPlugin;
    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Self::Bindings> {
        self.instantiate_async(store).await
    }
}

/// An older version's answer in the latest types.
fn adapt<A: Into<T>, E: Into<ProviderError>, T>(answer: Result<Result<A, E>, Error>) -> CallResult<T> {
    Ok(answer?.map(Into::into).map_err(Into::into))
}

/// A provider plugin ready to serve calls. Cheap to share; each call gets a fresh instance.
pub struct ProviderPlugin {
    pre: ProviderPre,
    guard: Guard,
}

/// A call's outcome: the runtime may fail, or the provider may answer with its own error.
pub type CallResult<T> = Result<Result<T, ProviderError>, Error>;

impl ProviderPlugin {
    pub(crate) fn new(pre: ProviderPre, guard: Guard) -> Self {
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

    /// The WIT version the plugin was built against.
    pub fn wit(&self) -> Wit {
        match &self.pre {
            ProviderPre::V0_1_0(_) => Wit::V0_1_0,
            ProviderPre::V0_2_0(_) => Wit::V0_2_0,
        }
    }

    /// `info()`: what the provider says about itself.
    pub async fn info(&self) -> Result<ProviderInfo, Error> {
        match &self.pre {
            ProviderPre::V0_1_0(pre) => self
                .guard
                .run(pre, async |store, b| b.codexcontinue_plugin_provider().call_info(store).await)
                .await
                .map(Into::into),
            ProviderPre::V0_2_0(pre) => {
                self.guard.run(pre, async |store, b| b.codexcontinue_plugin_provider().call_info(store).await).await
            }
        }
    }

    /// `list-models()`.
    pub async fn list_models(&self) -> CallResult<Vec<ModelInfo>> {
        match &self.pre {
            ProviderPre::V0_1_0(pre) => {
                let answer = self
                    .guard
                    .run(pre, async |store, b| b.codexcontinue_plugin_provider().call_list_models(store).await)
                    .await?;
                Ok(answer.map(|models| models.into_iter().map(Into::into).collect()).map_err(Into::into))
            }
            ProviderPre::V0_2_0(pre) => {
                self.guard
                    .run(pre, async |store, b| b.codexcontinue_plugin_provider().call_list_models(store).await)
                    .await
            }
        }
    }

    /// `chat(request)`: one complete reply.
    pub async fn chat(&self, request: &ChatRequest) -> CallResult<ChatResponse> {
        match &self.pre {
            ProviderPre::V0_1_0(pre) => {
                let request = v0_1_0::provider::codexcontinue::plugin::types::ChatRequest::from(request);
                adapt(
                    self.guard
                        .run(pre, async |store, b| b.codexcontinue_plugin_provider().call_chat(store, &request).await)
                        .await,
                )
            }
            ProviderPre::V0_2_0(pre) => {
                self.guard
                    .run(pre, async |store, b| b.codexcontinue_plugin_provider().call_chat(store, request).await)
                    .await
            }
        }
    }

    /// `chat-stream(request, sink)`: events go to `events` as the guest emits them; the complete
    /// reply is returned at the end. Dropping the returned future cancels the call.
    pub async fn chat_stream(
        &self,
        request: &ChatRequest,
        events: mpsc::Sender<StreamEvent>,
    ) -> CallResult<ChatResponse> {
        // The sink is the same host resource in every version; an older version's `emit`
        // converts its events before they reach `events`.
        match &self.pre {
            ProviderPre::V0_1_0(pre) => {
                let request = v0_1_0::provider::codexcontinue::plugin::types::ChatRequest::from(request);
                adapt(
                    self.guard
                        .run(pre, async |store, b| {
                            let sink = store.data_mut().table.push(Sink::new(events))?;
                            let borrowed = Resource::new_borrow(sink.rep());
                            let result = b
                                .codexcontinue_plugin_provider()
                                .call_chat_stream(&mut *store, &request, borrowed)
                                .await;
                            store.data_mut().table.delete(sink)?;
                            result
                        })
                        .await,
                )
            }
            ProviderPre::V0_2_0(pre) => {
                self.guard
                    .run(pre, async |store, b| {
                        let sink = store.data_mut().table.push(Sink::new(events))?;
                        let borrowed = Resource::new_borrow(sink.rep());
                        let result =
                            b.codexcontinue_plugin_provider().call_chat_stream(&mut *store, request, borrowed).await;
                        store.data_mut().table.delete(sink)?;
                        result
                    })
                    .await
            }
        }
    }

    /// `embed(request)`.
    pub async fn embed(&self, request: &EmbedRequest) -> CallResult<Embeddings> {
        match &self.pre {
            ProviderPre::V0_1_0(pre) => {
                let request = v0_1_0::provider::codexcontinue::plugin::types::EmbedRequest::from(request);
                adapt(
                    self.guard
                        .run(pre, async |store, b| b.codexcontinue_plugin_provider().call_embed(store, &request).await)
                        .await,
                )
            }
            ProviderPre::V0_2_0(pre) => {
                self.guard
                    .run(pre, async |store, b| b.codexcontinue_plugin_provider().call_embed(store, request).await)
                    .await
            }
        }
    }

    /// `count-tokens(request)`: the vendor's own count of the prompt, or `unsupported` (always,
    /// for a plugin older than WIT 0.2.0).
    pub async fn count_tokens(&self, request: &ChatRequest) -> CallResult<u32> {
        match &self.pre {
            ProviderPre::V0_1_0(_) => Ok(Err(ProviderError::Unsupported("count-tokens needs WIT 0.2.0".into()))),
            ProviderPre::V0_2_0(pre) => {
                self.guard
                    .run(pre, async |store, b| {
                        b.codexcontinue_plugin_provider().call_count_tokens(store, request).await
                    })
                    .await
            }
        }
    }
}
