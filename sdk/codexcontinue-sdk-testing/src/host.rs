//! [`TestHost`]: one staged plugin in the real host runtime, called directly as the server's
//! provider layer calls it, minus what that layer adds on top (retries, fallbacks, memory,
//! redaction of secrets from errors). What you see is the plugin's own answer.

use std::path::Path;

use codexcontinue::plugins::{Kind, Plugin};
use codexcontinue::providers::MAX_REPLY_BYTES;
use codexcontinue::runtime::{CallResult, MemoryPlugin, ProviderPlugin, STREAM_BUFFER};
use tokio::sync::mpsc;
use tracing::instrument::WithSubscriber;

use crate::builder::TestHostBuilder;
use crate::capture::{Capture, Denial, LogLine};
use crate::types::{ChatRequest, ChatResponse, EmbedRequest, Embeddings, ModelInfo, ProviderError, ProviderInfo};
use crate::{RuntimeError, StreamEvent};

/// Why a call returned no reply.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The plugin answered with its own WIT `provider-error` (how it reports a vendor's 401,
    /// 429, 5xx, a timeout, a refused request...).
    #[error("the provider answered with an error: {0:?}")]
    Provider(ProviderError),
    /// The call did not complete: the plugin trapped, ran out of CPU or memory, outlived its
    /// wall clock, found every slot busy, or returned a reply the server would refuse.
    #[error(transparent)]
    Runtime(RuntimeError),
}

impl HarnessError {
    /// The provider's error, if that is what this is.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            HarnessError::Provider(e) => Some(e),
            HarnessError::Runtime(_) => None,
        }
    }

    /// The runtime's error, if that is what this is.
    pub fn runtime_error(&self) -> Option<&RuntimeError> {
        match self {
            HarnessError::Runtime(e) => Some(e),
            HarnessError::Provider(_) => None,
        }
    }
}

/// A plugin loaded in the real host runtime, with the capabilities, limits and environment the
/// server would give it, ready to be called without a server.
///
/// Made by [`TestHost::builder`]. Every call runs on a fresh instance, as on the server. What
/// the plugin logs, the egress the host refuses and what it prints are captured per host
/// ([`logs`](Self::logs), [`denials`](Self::denials), [`output`](Self::output)).
pub struct TestHost {
    plugin: Plugin,
    capture: Capture,
}

impl TestHost {
    /// Starts setting up a host for the component at `wasm` (see [`TestHostBuilder`]). Its
    /// manifest is `<stem>.toml` beside it, or beside the crate [`build_plugin`] built it from,
    /// unless [`manifest`](TestHostBuilder::manifest) or
    /// [`manifest_text`](TestHostBuilder::manifest_text) names another.
    ///
    /// [`build_plugin`]: crate::build_plugin
    pub fn builder(wasm: impl AsRef<Path>) -> TestHostBuilder {
        TestHostBuilder::new(wasm.as_ref())
    }

    pub(crate) fn new(plugin: Plugin, capture: Capture) -> Self {
        Self { plugin, capture }
    }

    /// The staged plugin as the server holds it: manifest, digest, granted capabilities.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Whether this is a provider or a memory plugin.
    pub fn kind(&self) -> Kind {
        self.plugin.manifest.kind
    }

    /// What the provider said about itself when it was staged (its `info()`).
    ///
    /// # Panics
    ///
    /// If the plugin is a memory plugin.
    pub fn info(&self) -> &ProviderInfo {
        &self.staged_provider().info
    }

    /// What the server would report as missing for this provider to work: declared secrets
    /// without a value and `required_config` keys without one (named by the variable that sets
    /// them). Empty when it is ready.
    ///
    /// # Panics
    ///
    /// If the plugin is a memory plugin.
    pub fn missing(&self) -> &[String] {
        &self.staged_provider().missing
    }

    /// The provider, for calls this harness does not wrap.
    ///
    /// # Panics
    ///
    /// If the plugin is a memory plugin.
    pub fn provider(&self) -> &ProviderPlugin {
        &self.staged_provider().plugin
    }

    /// The memory plugin (after its `init()` succeeded), to call its `memory-store` functions:
    /// `host.captured(host.memory().append(&scope, &messages, None)).await` (without
    /// [`captured`](Self::captured) the call works the same but its logs are not collected).
    /// Types are in [`memory_types`].
    ///
    /// # Panics
    ///
    /// If the plugin is a provider.
    ///
    /// [`memory_types`]: crate::memory_types
    pub fn memory(&self) -> &MemoryPlugin {
        self.plugin.memory().unwrap_or_else(|| panic!("{} is a provider plugin, not a memory plugin", self.label()))
    }

    /// `chat(request)`: one complete reply.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Provider`] when the plugin answers with an error,
    /// [`HarnessError::Runtime`] when the call fails in the runtime, including a reply over the
    /// server's size limit.
    ///
    /// # Panics
    ///
    /// If the plugin is a memory plugin.
    pub async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, HarnessError> {
        let result = self.provider().chat(&request).with_subscriber(self.capture.dispatch().clone()).await;
        self.checked(flatten(result)?)
    }

    /// `chat-stream(request, sink)`: every event the plugin emitted, in order, and the complete
    /// reply or the error it ended with. [`stream_text`](crate::stream_text) joins the deltas.
    ///
    /// # Panics
    ///
    /// If the plugin is a memory plugin.
    pub async fn chat_stream(&self, request: ChatRequest) -> (Vec<StreamEvent>, Result<ChatResponse, HarnessError>) {
        let (tx, mut rx) = mpsc::channel(STREAM_BUFFER);
        let call = self.provider().chat_stream(&request, tx).with_subscriber(self.capture.dispatch().clone());
        // Read while the plugin writes: the channel is bounded, as on the server.
        let collect = async {
            let mut events = Vec::new();
            while let Some(event) = rx.recv().await {
                events.push(event);
            }
            events
        };
        let (result, events) = tokio::join!(call, collect);
        (events, flatten(result).and_then(|reply| self.checked(reply)))
    }

    /// `list-models()`.
    ///
    /// # Errors
    ///
    /// As [`chat`](Self::chat).
    ///
    /// # Panics
    ///
    /// If the plugin is a memory plugin.
    pub async fn list_models(&self) -> Result<Vec<ModelInfo>, HarnessError> {
        flatten(self.provider().list_models().with_subscriber(self.capture.dispatch().clone()).await)
    }

    /// `embed(request)`.
    ///
    /// # Errors
    ///
    /// As [`chat`](Self::chat); a provider without embeddings answers
    /// [`ProviderError::Unsupported`].
    ///
    /// # Panics
    ///
    /// If the plugin is a memory plugin.
    pub async fn embed(&self, request: EmbedRequest) -> Result<Embeddings, HarnessError> {
        flatten(self.provider().embed(&request).with_subscriber(self.capture.dispatch().clone()).await)
    }

    /// Runs `call` (a call on [`provider`](Self::provider) or [`memory`](Self::memory)) with
    /// this host's capture, so its logs, denials and output are collected like those of the
    /// calls this harness wraps.
    pub async fn captured<F: Future>(&self, call: F) -> F::Output {
        call.with_subscriber(self.capture.dispatch().clone()).await
    }

    /// Every line the plugin logged through the `log` capability so far, staging included.
    pub fn logs(&self) -> Vec<LogLine> {
        self.capture.logs()
    }

    /// Every request of the plugin the host refused so far (destination not allowed, private
    /// address, a secret sent where it may not go).
    pub fn denials(&self) -> Vec<Denial> {
        self.capture.denials()
    }

    /// What the plugin wrote to stdout/stderr, one entry per call that wrote anything (a panic
    /// message lands here).
    pub fn output(&self) -> Vec<String> {
        self.capture.output()
    }

    fn staged_provider(&self) -> &codexcontinue::plugins::Provider {
        self.plugin.provider().unwrap_or_else(|| panic!("{} is a memory plugin, not a provider", self.label()))
    }

    fn label(&self) -> String {
        self.plugin.label().to_string()
    }

    /// Refuses a reply the server would refuse (over [`MAX_REPLY_BYTES`]), as it does.
    fn checked(&self, reply: ChatResponse) -> Result<ChatResponse, HarnessError> {
        if reply.content.len() > MAX_REPLY_BYTES {
            return Err(HarnessError::Runtime(RuntimeError::InvalidOutput {
                plugin: self.plugin.label(),
                reason: format!("a reply of {} bytes exceeds the {MAX_REPLY_BYTES}-byte limit", reply.content.len()),
            }));
        }
        Ok(reply)
    }
}

/// One error type for both ways a call can fail.
fn flatten<T>(result: CallResult<T>) -> Result<T, HarnessError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(HarnessError::Provider(e)),
        Err(e) => Err(HarnessError::Runtime(e)),
    }
}
