//! The Python provider (app.py, built into python-provider.wasm by build.sh with
//! componentize-py) in a simulated host: it stages like a Rust plugin and answers through the
//! same WIT contract, config and streaming sink included.

use std::path::{Path, PathBuf};

use codexcontinue_sdk_testing::prelude::*;

/// The component build.sh wrote beside the manifest.
fn component() -> PathBuf {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("python-provider.wasm");
    assert!(wasm.is_file(), "{} is missing: run examples/python-provider/build.sh first", wasm.display());
    wasm
}

/// A chat greets the last user message, with the greeting from config (and its [env] override).
#[tokio::test]
async fn greets_with_the_configured_greeting() {
    let host = TestHost::builder(component()).start().await.expect("the plugin stages");
    assert_eq!((host.info().name.as_str(), host.info().default_model.as_str()), ("Hello (Python)", "hello-py"));
    let reply = host.chat(ChatRequest::user("hello-py", "world")).await.unwrap();
    assert_eq!(reply.content, "Hello, world!");

    let host = TestHost::builder(component()).env("PYTHON_PROVIDER_GREETING", "Ahoy").start().await.unwrap();
    assert_eq!(host.chat(ChatRequest::user("hello-py", "Ada")).await.unwrap().content, "Ahoy, Ada!");
}

/// Streaming emits word by word through the host's sink; a missing user message is a WIT
/// `bad-request` raised from Python, not a trap.
#[tokio::test]
async fn streams_and_raises_wit_errors() {
    let host = TestHost::builder(component()).start().await.expect("the plugin stages");
    let (events, reply) = host.chat_stream(ChatRequest::user("hello-py", "big world")).await;
    assert_eq!(events.len(), 3);
    assert_eq!(stream_text(&events), "Hello, big world!");
    assert_eq!(reply.unwrap().content, "Hello, big world!");

    let error = host.chat(ChatRequest::new("hello-py", vec![Message::system("no user")])).await.unwrap_err();
    assert!(matches!(error.provider_error(), Some(ProviderError::BadRequest(_))), "{error}");
}
