//! The [`Provider`] trait plugin authors implement, the [`export_provider!`](crate::export_provider) macro that wires it
//! to the generated `provider` export, and small helpers on [`Sink`].

use std::marker::PhantomData;

use crate::bindings::provider::exports::codexcontinue::plugin::provider::Guest;
use crate::{
    ChatRequest, ChatResponse, EmbedRequest, Embeddings, ModelInfo, ProviderError, ProviderInfo, Sink, StreamEvent,
    ToolCallDelta,
};

/// An LLM provider, exported with [`export_provider!`](crate::export_provider).
///
/// The host creates a fresh instance of the component for every call, so methods are static and
/// a plugin keeps no state between calls. Errors carry a message for the operator; they must
/// never contain a secret.
pub trait Provider: 'static {
    /// Static facts about the provider; called once when the host stages the plugin.
    fn info() -> ProviderInfo;

    /// The models the provider can serve. The default lists only `info().default_model`.
    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(vec![ModelInfo::new(Self::info().default_model)])
    }

    /// One complete reply.
    fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// The same reply, emitted to `out` as it arrives; returns the complete reply at the end.
    ///
    /// The default calls [`Provider::chat`] and emits the whole reply at once (see
    /// [`Sink::emit_response`]); vendors that stream should override it.
    fn chat_stream(request: ChatRequest, out: &Sink) -> Result<ChatResponse, ProviderError> {
        let response = Self::chat(request)?;
        out.emit_response(&response);
        Ok(response)
    }

    /// Embedding vectors, one per input. The default answers `unsupported`.
    fn embed(request: EmbedRequest) -> Result<Embeddings, ProviderError> {
        let _ = request;
        Err(ProviderError::Unsupported(format!("{} does not offer embeddings", Self::info().name)))
    }

    /// The prompt tokens `request` would use, as the vendor counts them. The default answers
    /// `unsupported`, and the host estimates with its own tokenizer.
    fn count_tokens(request: ChatRequest) -> Result<u32, ProviderError> {
        let _ = request;
        Err(ProviderError::Unsupported(format!("{} does not count tokens", Self::info().name)))
    }
}

impl Sink {
    /// Emits one piece of reply text.
    pub fn delta(&self, text: impl Into<String>) {
        self.emit(&StreamEvent::Delta(text.into()));
    }

    /// Emits a complete reply as one text delta plus one event per tool call, for providers
    /// that cannot stream; empty content emits no delta.
    pub fn emit_response(&self, response: &ChatResponse) {
        if !response.content.is_empty() {
            self.delta(response.content.as_str());
        }
        for (index, call) in (0u32..).zip(&response.tool_calls) {
            self.emit(&StreamEvent::ToolCall(ToolCallDelta {
                index,
                id: Some(call.id.clone()),
                name: Some(call.name.clone()),
                arguments: call.arguments.clone(),
            }));
        }
    }
}

/// Adapts a [`Provider`] to the generated `Guest` trait; named only by [`export_provider!`](crate::export_provider).
#[doc(hidden)]
pub struct ProviderExport<T>(PhantomData<T>);

impl<T: Provider> Guest for ProviderExport<T> {
    fn info() -> ProviderInfo {
        T::info()
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        T::list_models()
    }

    fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError> {
        T::chat(request)
    }

    fn chat_stream(request: ChatRequest, out: &Sink) -> Result<ChatResponse, ProviderError> {
        T::chat_stream(request, out)
    }

    fn embed(request: EmbedRequest) -> Result<Embeddings, ProviderError> {
        T::embed(request)
    }

    fn count_tokens(request: ChatRequest) -> Result<u32, ProviderError> {
        T::count_tokens(request)
    }
}

/// Exports a [`Provider`] implementation as the component's `codexcontinue:plugin/provider`.
///
/// Call it once per plugin crate, at the top level: `export_provider!(MyProvider);`. The exports
/// exist only when compiling for `wasm32`, so the same crate still builds and tests natively.
#[macro_export]
macro_rules! export_provider {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // The generated export macro takes a plain identifier, hence the alias.
            type __CodexContinueProvider = $crate::__private::ProviderExport<$ty>;
            $crate::bindings::provider::export_provider_world!(
                __CodexContinueProvider with_types_in $crate::bindings::provider
            );
        };
        // Native builds (unit tests) export nothing: the WIT export names are not valid native
        // symbols. Naming a method still checks the trait bound and keeps the type in use.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::Provider>::info;
        };
    };
}
