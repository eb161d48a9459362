//! The hello provider in a simulated host: built for wasm32-wasip2 by the harness, staged as
//! the server stages it, and called without a server or a network.

use codexcontinue_sdk_testing::prelude::*;

async fn host() -> TestHost {
    let wasm = build_plugin(env!("CARGO_MANIFEST_DIR")).expect("the plugin builds");
    TestHost::builder(&wasm).start().await.expect("the plugin stages")
}

/// The reply greets the last user message, whatever came before it.
#[tokio::test]
async fn greets_the_last_user_message() {
    let host = host().await;
    assert_eq!(host.info().default_model, "hello");
    let request = ChatRequest::new(
        "hello",
        vec![Message::user("Ada"), Message::assistant("Hello, Ada!"), Message::user("world")],
    );
    let reply = host.chat(request).await.unwrap();
    assert_eq!((reply.content.as_str(), reply.model.as_str()), ("Hello, world!", "hello"));
}

/// Streaming falls back to the trait's default: the whole reply as one delta.
#[tokio::test]
async fn streams_the_same_reply() {
    let host = host().await;
    let (events, reply) = host.chat_stream(ChatRequest::user("hello", "stream")).await;
    assert_eq!(stream_text(&events), "Hello, stream!");
    assert_eq!(reply.unwrap().content, "Hello, stream!");
}

/// A request without a user message is the caller's mistake: `bad-request`, not a crash.
#[tokio::test]
async fn no_user_message_is_a_bad_request() {
    let host = host().await;
    let error = host.chat(ChatRequest::new("hello", vec![Message::system("be nice")])).await.unwrap_err();
    assert!(matches!(error.provider_error(), Some(ProviderError::BadRequest(_))), "{error}");
}
