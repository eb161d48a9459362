//! A host-simulating test harness for CodexContinue plugins: load a built plugin component in
//! the real host runtime and call it from `cargo test`, without a server.
//!
//! [`TestHost`] stages the plugin exactly as the server does (manifest, compile, WIT version,
//! link, `info()`), with the same capabilities, limits, allow-lists and secret rules, from an
//! environment the test sets (never the test process's own). Calls return the plugin's reply or
//! a [`HarnessError`] that tells the plugin's own `provider-error` from a runtime failure (trap,
//! CPU or memory limit, timeout). What the plugin logs and the egress the host refuses are
//! captured. The vendor is a [`mock::MockServer`] on 127.0.0.1 speaking its real wire format.
//!
//! ```no_run
//! use codexcontinue_sdk_testing::mock::{MockServer, Reply};
//! use codexcontinue_sdk_testing::prelude::*;
//! use serde_json::json;
//!
//! #[tokio::test]
//! async fn answers_from_the_vendor() -> Result<(), Box<dyn std::error::Error>> {
//!     // cargo build --release --target wasm32-wasip2, into a target directory of its own.
//!     let wasm = build_plugin(env!("CARGO_MANIFEST_DIR"))?;
//!     let vendor = MockServer::start(|_| {
//!         Reply::json(200, json!({"choices": [{"message": {"content": "Hi!"}, "finish_reason": "stop"}]}))
//!     })
//!     .await;
//!     let host = TestHost::builder(&wasm) // manifest: hello.toml beside the crate
//!         .env("HELLO_API_KEY", "sk-test")
//!         .env("HELLO_BASE_URL", &vendor.url) // also allows exactly this origin
//!         .limits(|l| l.timeout_ms = 2000)
//!         .start()
//!         .await?;
//!     assert_eq!(host.info().name, "Hello");
//!
//!     let reply = host.chat(ChatRequest::user("hello-1", "Hi?")).await?;
//!     assert_eq!(reply.content, "Hi!");
//!     assert_eq!(vendor.single_request().header("authorization"), Some("Bearer sk-test"));
//!
//!     let (events, reply) = host.chat_stream(ChatRequest::user("hello-1", "Hi?")).await;
//!     assert_eq!(stream_text(&events), reply?.content);
//!     assert!(host.denials().is_empty());
//!     Ok(())
//! }
//! ```
//!
//! A plugin workspace builds for `wasm32-wasip2` by default, so its tests run natively:
//! `cargo test --target host-tuple` (or the host triple, e.g. `x86_64-unknown-linux-gnu`).
//!
//! Layout:
//! - `plugin_build`: [`build_plugin`], cargo building a plugin crate from its own tests.
//! - `builder`: [`TestHostBuilder`], manifest, environment and limits, then staging.
//! - `host`: [`TestHost`] and its calls, [`HarnessError`].
//! - `capture`: the plugin's [`LogLine`]s, [`Denial`]s and output, from the host's events.
//! - `requests`: constructors for the WIT records ([`ChatRequestExt`], [`MessageExt`]).

#![warn(missing_docs)]

mod builder;
mod capture;
mod host;
mod plugin_build;
mod requests;

pub use builder::{Limits, TestHostBuilder};
pub use capture::{Denial, Level, LogLine};
pub use host::{HarnessError, TestHost};
pub use plugin_build::{BuildError, PluginBuild, WASM_TARGET, build_plugin};
pub use requests::{ChatRequestExt, EmbedRequestExt, MessageExt, stream_deltas, stream_text};

/// The host library the harness runs plugins in, for what the harness does not wrap.
pub use codexcontinue;
/// Why staging failed: the file, the [`Step`] and the reason, as the server reports it.
pub use codexcontinue::plugins::Error as StageError;
pub use codexcontinue::plugins::{Kind, Step};
/// Why a call failed in the runtime (trap, out of memory, CPU exhausted, timeout, busy...).
pub use codexcontinue::runtime::Error as RuntimeError;
/// The WIT `memory-store` types, for memory plugins.
pub use codexcontinue::runtime::memory_types;
/// The WIT `types` interface as the host sees it.
pub use codexcontinue::runtime::types;
pub use codexcontinue::runtime::types::{
    ChatRequest, ChatResponse, EmbedRequest, Embeddings, FinishReason, Message, ModelInfo, ProviderError, ProviderInfo,
    RateLimit, Role, StreamEvent, ToolCall, ToolCallDelta, ToolSpec, Usage,
};
/// The scripted vendor server (`codexcontinue-vendor-mock`).
pub use codexcontinue_vendor_mock as mock;

/// What most plugin tests use: `use codexcontinue_sdk_testing::prelude::*;`.
pub mod prelude {
    pub use crate::{
        ChatRequest, ChatRequestExt, ChatResponse, EmbedRequest, EmbedRequestExt, HarnessError, Level, Message,
        MessageExt, ProviderError, Role, RuntimeError, StreamEvent, TestHost, build_plugin, stream_deltas, stream_text,
    };
}
