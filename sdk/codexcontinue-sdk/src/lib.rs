//! Guest SDK for CodexContinue plugins: WebAssembly components that implement the
//! `codexcontinue:plugin@0.1.0` WIT contract (worlds `provider-plugin` and `memory-plugin`).
//!
//! A provider plugin implements [`Provider`] on a unit struct and calls [`export_provider!`]
//! once; a memory plugin does the same with [`MemoryStore`] and [`export_memory_store!`]. Build
//! the crate as a `cdylib` for `wasm32-wasip2` and the output is the component the host loads.
//!
//! ```
//! use codexcontinue_sdk::{
//!     ChatRequest, ChatResponse, FinishReason, Provider, ProviderError, ProviderInfo,
//!     export_provider,
//! };
//!
//! struct Hello;
//!
//! impl Provider for Hello {
//!     fn info() -> ProviderInfo {
//!         ProviderInfo {
//!             name: "Hello".into(),
//!             default_model: "hello".into(),
//!             embedding_model: None,
//!         }
//!     }
//!
//!     fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError> {
//!         // A stop reply with no tool calls, reasoning or usage (the host counts tokens).
//!         let reply = ChatResponse::text(request.model, "hello");
//!         assert_eq!(reply.finish_reason, FinishReason::Stop);
//!         Ok(reply)
//!     }
//! }
//!
//! export_provider!(Hello);
//! ```
//!
//! Modules:
//! - [`provider`]: the [`Provider`] trait, [`export_provider!`] and helpers on [`Sink`].
//! - [`memory`]: the [`MemoryStore`] trait and [`export_memory_store!`].
//! - [`http`]: a small request builder over the host's `http-client`, and [`secret`].
//! - [`error`]: [`error_from_status`] and conversions into [`ProviderError`].
//! - [`sse`] and [`ndjson`]: incremental parsers for streamed vendor replies.
//! - [`vendor`]: building blocks for plugins mapping a vendor's API: request bodies, tools, stream
//!   reading and a [`Collector`](vendor::Collector) that assembles and emits a streamed reply.
//! - [`openai`]: the OpenAI Chat Completions wire format, and a whole provider for any API that
//!   speaks it (OpenAI, Azure OpenAI, Mistral, GitHub Models, vLLM, LM Studio, llama.cpp).
//! - [`log`] and [`config`]: the host's logging and non-secret configuration.
//! - [`embedding`]: deterministic offline embeddings for demos and tests.
//! - [`redis`] and [`postgres`]: the database capabilities memory plugins may use.
//!
//! Everything compiles for the host target as well (the export macros then export nothing), so
//! plugin logic can be unit tested natively; calling a host import outside a component panics.

#![warn(missing_docs)]

#[doc(hidden)]
pub mod bindings;
pub mod config;
pub mod embedding;
pub mod error;
pub mod http;
mod lines;
pub mod log;
pub mod memory;
pub mod ndjson;
pub mod openai;
pub mod provider;
pub mod sse;
mod types;
pub mod vendor;

pub use error::error_from_status;
pub use http::secret;
pub use memory::MemoryStore;
pub use provider::Provider;

pub use bindings::memory::codexcontinue::plugin::{postgres, redis};
pub use bindings::memory::exports::codexcontinue::plugin::memory_store::{
    Embedding, NewMessage, Scope, SessionInfo, StoreError, StoredMessage, Summary,
};
pub use bindings::provider::codexcontinue::plugin::http_client::HttpError;
pub use bindings::provider::codexcontinue::plugin::streaming::Sink;
pub use bindings::provider::codexcontinue::plugin::types::{
    ChatRequest, ChatResponse, ContentPart, EmbedRequest, Embeddings, FinishReason, Image, ImageData, InputType,
    Message, ModelInfo, ProviderError, ProviderInfo, RateLimit, ReasoningBlock, Role, StreamEvent, ToolCall,
    ToolCallDelta, ToolSpec, Usage,
};

/// Implementation details the export macros expand to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::memory::MemoryStoreExport;
    pub use crate::provider::ProviderExport;
}
