//! Dummy: a deliberately misbehaving provider for host tests, never installed. The request's
//! model name picks the behaviour (see [`Behaviour`]), in `chat` and `chat-stream` alike, so
//! host tests can prove limits, traps, errors, streaming and capabilities deterministically.

use std::hint::black_box;
use std::thread::sleep;
use std::time::Duration;

use codexcontinue_sdk::http::Request;
use codexcontinue_sdk::{
    ChatRequest, ChatResponse, ContentPart, EmbedRequest, Embeddings, FinishReason, HttpError, Image, Provider,
    ProviderError, ProviderInfo, RateLimit, ReasoningBlock, Sink, StreamEvent, Usage, config, export_provider, log,
    secret,
};

/// What a request asks the dummy to do, chosen by its model name.
#[derive(Debug, PartialEq)]
enum Behaviour<'a> {
    /// Reply `ok` (the default for any unknown model).
    Ok,
    /// Spin forever, to exercise CPU limits.
    Loop,
    /// Allocate 1 MiB blocks until the memory limit stops it.
    Oom,
    /// Panic, which traps the instance.
    Panic,
    /// Reply with 16 MiB of `x`.
    Huge,
    /// Fail with this provider error.
    Fail(ProviderError),
    /// Sleep 2 s, then reply `slow`, to exercise wall-clock limits.
    Slow,
    /// Stream `a`, `b`, `c`, then fail as if the vendor dropped the connection.
    StreamDrop,
    /// Stream `d0 `..`d4 ` 20 ms apart.
    Stream,
    /// Reply with the config value of this key, or `<none>`.
    Config(&'a str),
    /// GET this URL with a secret placeholder and reply `<status> <body>`.
    Http(&'a str),
    /// Like `Http`, then also try to smuggle the answer out: log it at every level and write
    /// it to stdout and stderr.
    Leak(&'a str),
    /// Reply with the guest's own environment variable of this name, or `<unset>`.
    Env(&'a str),
    /// Log one line at each level, then reply `logged`.
    Log,
    /// Write to stderr, then reply `ok`.
    Stderr,
    /// Reply with the prompt it was given, one `role: content` line per message, so memory
    /// tests can see what the host sent.
    Prompt,
    /// Reason like a signing vendor: stream the reasoning deltas [`THOUGHTS`], reply `thought`
    /// with a signed block and an encrypted-only one, and append what reasoning the request
    /// carried back (`; replayed <signature|encrypted>...`), so host tests see what was replayed.
    Think,
    /// Decline: reply `I can't help with that.` with finish reason `refusal`.
    Refuse,
    /// Describe the content parts of the last user message, one per line (`text <text>`,
    /// `url <url>`, `base64 <media type> <data length>`), so host tests see images arrive.
    Parts,
}

/// What the `think` model streams as reasoning, in order.
const THOUGHTS: [&str; 2] = ["Thinking ", "hard."];

impl<'a> Behaviour<'a> {
    fn from_model(model: &'a str) -> Self {
        if let Some(key) = model.strip_prefix("config:") {
            return Self::Config(key);
        }
        if let Some(url) = model.strip_prefix("http:") {
            return Self::Http(url);
        }
        if let Some(url) = model.strip_prefix("leak:") {
            return Self::Leak(url);
        }
        if let Some(name) = model.strip_prefix("env:") {
            return Self::Env(name);
        }
        match model {
            "loop" => Self::Loop,
            "oom" => Self::Oom,
            "panic" => Self::Panic,
            "huge" => Self::Huge,
            "error-401" => Self::Fail(ProviderError::Unauthorized("dummy: bad key".into())),
            "error-404" => Self::Fail(ProviderError::NotFound("dummy: no such model".into())),
            "error-429" => Self::Fail(ProviderError::RateLimited(RateLimit {
                retry_after_ms: Some(1500),
                message: "dummy: slow down".into(),
            })),
            "error-500" => Self::Fail(ProviderError::unavailable("dummy: server error")),
            "error-timeout" => Self::Fail(ProviderError::Timeout("dummy: timed out".into())),
            "slow" => Self::Slow,
            "stream-drop" => Self::StreamDrop,
            "stream" => Self::Stream,
            "log" => Self::Log,
            "stderr" => Self::Stderr,
            "prompt" => Self::Prompt,
            "think" => Self::Think,
            "refuse" => Self::Refuse,
            "parts" => Self::Parts,
            _ => Self::Ok,
        }
    }
}

/// Runs the behaviour `request.model` picks, handing each piece of the reply to `emit` (a no-op
/// for `chat`, the sink for `chat-stream`) and returning the complete reply.
fn respond(request: &ChatRequest, emit: &mut dyn FnMut(&str)) -> Result<ChatResponse, ProviderError> {
    let content = match Behaviour::from_model(&request.model) {
        Behaviour::Ok => "ok".to_owned(),
        Behaviour::Loop => spin(),
        Behaviour::Oom => exhaust_memory(),
        Behaviour::Panic => panic!("dummy plugin panicked on purpose"),
        Behaviour::Huge => "x".repeat(16 << 20),
        Behaviour::Fail(error) => return Err(error),
        Behaviour::Slow => {
            sleep(Duration::from_secs(2));
            "slow".to_owned()
        }
        Behaviour::StreamDrop => {
            ["a", "b", "c"].into_iter().for_each(&mut *emit);
            return Err(ProviderError::unavailable("stream dropped"));
        }
        Behaviour::Stream => {
            let mut content = String::new();
            for i in 0..5 {
                if i > 0 {
                    sleep(Duration::from_millis(20));
                }
                let delta = format!("d{i} ");
                emit(&delta);
                content.push_str(&delta);
            }
            return Ok(reply(request, content));
        }
        Behaviour::Config(key) => config::get(key).unwrap_or_else(|| "<none>".to_owned()),
        Behaviour::Http(url) => fetch(url)?,
        Behaviour::Leak(url) => {
            let heard = fetch(url)?;
            log::trace(&heard);
            log::debug(&heard);
            log::info(&heard);
            log::warn(&heard);
            log::error(&heard);
            println!("stdout: {heard}");
            eprintln!("stderr: {heard}");
            heard
        }
        Behaviour::Env(name) => std::env::var(name).unwrap_or_else(|_| "<unset>".to_owned()),
        Behaviour::Log => {
            log::trace("dummy trace");
            log::debug("dummy debug");
            log::info("dummy info");
            log::warn("dummy warn");
            log::error("dummy error");
            "logged".to_owned()
        }
        Behaviour::Stderr => {
            eprintln!("dummy wrote to stderr");
            "ok".to_owned()
        }
        Behaviour::Prompt => request
            .messages
            .iter()
            .map(|m| format!("{}: {}", codexcontinue_sdk::vendor::role_name(m.role), m.text()).to_lowercase())
            .collect::<Vec<_>>()
            .join("\n"),
        Behaviour::Think => {
            let content = format!("thought{}", replayed(request));
            emit(&content);
            return Ok(ChatResponse { reasoning: thoughts(), ..reply(request, content) });
        }
        Behaviour::Refuse => {
            let content = "I can't help with that.".to_owned();
            emit(&content);
            return Ok(ChatResponse { finish_reason: FinishReason::Refusal, ..reply(request, content) });
        }
        Behaviour::Parts => parts(request),
    };
    emit(&content);
    Ok(reply(request, content))
}

/// The reasoning blocks `think` returns: one signed over the streamed text, one encrypted only.
fn thoughts() -> Vec<ReasoningBlock> {
    vec![
        ReasoningBlock {
            text: THOUGHTS.concat(),
            signature: Some("sig-dummy-1".into()),
            encrypted_content: None,
            id: Some("rs_dummy_1".into()),
        },
        ReasoningBlock {
            text: String::new(),
            signature: None,
            encrypted_content: Some("enc-dummy-2".into()),
            id: None,
        },
    ]
}

/// `; replayed a b` naming each reasoning block's signature (or encrypted content) that
/// `request` carried, or nothing when it carried none.
fn replayed(request: &ChatRequest) -> String {
    let seen: Vec<&str> = request
        .messages
        .iter()
        .flat_map(|m| &m.reasoning)
        .filter_map(|b| b.signature.as_deref().or(b.encrypted_content.as_deref()))
        .collect();
    if seen.is_empty() { String::new() } else { format!("; replayed {}", seen.join(" ")) }
}

/// One line per content part of the last user message.
fn parts(request: &ChatRequest) -> String {
    let last = request.messages.iter().rev().find(|m| m.role == codexcontinue_sdk::Role::User);
    last.map(|m| &m.content[..])
        .unwrap_or_default()
        .iter()
        .map(|part| match part {
            ContentPart::Text(text) => format!("text {text}"),
            ContentPart::Image(Image::Url(url)) => format!("url {url}"),
            ContentPart::Image(Image::Base64(data)) => format!("base64 {} {}", data.media_type, data.data.len()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `stop` reply with a fixed usage, echoing the requested model.
fn reply(request: &ChatRequest, content: String) -> ChatResponse {
    ChatResponse { usage: Some(Usage::new(1, 1)), ..ChatResponse::text(&request.model, content) }
}

/// GETs `url` with a secret placeholder the host must substitute or deny; transport errors are
/// passed back verbatim (`Debug`) so tests can read the host's denial message.
fn fetch(url: &str) -> Result<String, ProviderError> {
    let verbatim = |e: HttpError| ProviderError::Other(format!("{e:?}"));
    let response = Request::get(url)
        .header("authorization", format!("Bearer {}", secret("DUMMY_KEY")))
        .send()
        .map_err(verbatim)?;
    let body = response.text().map_err(verbatim)?;
    Ok(format!("{} {body}", response.status()))
}

/// Never returns: `black_box` keeps the optimiser from proving the loop useless.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Keeps allocating 1 MiB blocks until an allocation fails, which aborts (traps) the instance.
fn exhaust_memory() -> ! {
    let mut blocks = Vec::new();
    loop {
        // Filled with ones so the pages are really written, not left as lazily zeroed memory.
        blocks.push(black_box(vec![1u8; 1 << 20]));
        black_box(&blocks);
    }
}

/// Hot-reload tests ship versions of this plugin that differ only in `[config]`: with
/// `mode = "panic"` every chat crashes before it emits anything.
fn crash_if_configured() {
    if config::get("mode").as_deref() == Some("panic") {
        panic!("dummy plugin configured to crash on every chat");
    }
}

/// Applies `reply` from `[config]`, which replaces the `ok` reply so that each answer names the
/// version that gave it.
fn configured(result: Result<ChatResponse, ProviderError>) -> Result<ChatResponse, ProviderError> {
    let mut response = result?;
    if let Some(reply) = config::get("reply").filter(|_| response.content == "ok") {
        response.content = reply;
    }
    Ok(response)
}

/// The test provider; see [`Behaviour`].
struct Dummy;

impl Provider for Dummy {
    fn info() -> ProviderInfo {
        // Lets host tests prove that a plugin failing `info()` during staging never replaces
        // the working one.
        match config::get("info").as_deref() {
            Some("panic") => panic!("dummy plugin panicked in info() on purpose"),
            Some("loop") => spin(),
            _ => ProviderInfo {
                name: "Dummy (tests only)".into(),
                default_model: "ok".into(),
                embedding_model: Some("dummy-embed".into()),
            },
        }
    }

    fn chat(request: ChatRequest) -> Result<ChatResponse, ProviderError> {
        crash_if_configured();
        configured(respond(&request, &mut |_| {}))
    }

    fn chat_stream(request: ChatRequest, out: &Sink) -> Result<ChatResponse, ProviderError> {
        crash_if_configured();
        if Behaviour::from_model(&request.model) == Behaviour::Think {
            THOUGHTS.into_iter().for_each(|t| out.emit(&StreamEvent::Reasoning(t.to_owned())));
        }
        configured(respond(&request, &mut |delta| out.delta(delta)))
    }

    fn embed(request: EmbedRequest) -> Result<Embeddings, ProviderError> {
        Ok(Embeddings {
            model: request.model.unwrap_or_else(|| "dummy-embed".into()),
            vectors: request.inputs.iter().map(|text| codexcontinue_sdk::embedding::hashed(text, 64)).collect(),
            usage: None,
        })
    }
}

export_provider!(Dummy);

#[cfg(test)]
mod tests {
    use super::*;

    fn request(model: &str) -> ChatRequest {
        ChatRequest::new(model, Vec::new())
    }

    /// Runs `model` as `chat-stream` would, collecting the emitted deltas.
    fn run(model: &str) -> (Vec<String>, Result<ChatResponse, ProviderError>) {
        let mut deltas = Vec::new();
        let result = respond(&request(model), &mut |d| deltas.push(d.to_owned()));
        (deltas, result)
    }

    /// Model names map to behaviours; prefixes carry their argument; unknown names are `ok`.
    #[test]
    fn behaviour_from_model() {
        assert_eq!(Behaviour::from_model("config:base_url"), Behaviour::Config("base_url"));
        assert_eq!(Behaviour::from_model("http:http://127.0.0.1:9/x"), Behaviour::Http("http://127.0.0.1:9/x"));
        assert_eq!(Behaviour::from_model("loop"), Behaviour::Loop);
        assert_eq!(Behaviour::from_model("gpt-4o"), Behaviour::Ok);
        assert_eq!(
            Behaviour::from_model("error-429"),
            Behaviour::Fail(ProviderError::RateLimited(RateLimit {
                retry_after_ms: Some(1500),
                message: "dummy: slow down".into(),
            }))
        );
    }

    /// `ok` replies with fixed usage and echoes the model, emitting the reply as one delta.
    #[test]
    fn ok_reply() {
        let (deltas, result) = run("anything");
        let response = result.unwrap();
        assert_eq!(deltas, ["ok"]);
        assert_eq!(response.content, "ok");
        assert_eq!(response.model, "anything");
        assert_eq!(response.usage, Some(Usage::new(1, 1)));
    }

    /// `stream` emits five deltas that make up the reply; `stream-drop` emits three then fails.
    #[test]
    fn streams() {
        let (deltas, result) = run("stream");
        assert_eq!(deltas, ["d0 ", "d1 ", "d2 ", "d3 ", "d4 "]);
        assert_eq!(result.unwrap().content, deltas.concat());

        let (deltas, result) = run("stream-drop");
        assert_eq!(deltas, ["a", "b", "c"]);
        assert_eq!(result, Err(ProviderError::unavailable("stream dropped")));
    }

    /// `think` returns a signed and an encrypted block and names the reasoning it was given;
    /// `refuse` refuses; `parts` describes the user's content parts.
    #[test]
    fn reasoning_refusal_and_parts() {
        let response = run("think").1.unwrap();
        assert_eq!(response.content, "thought");
        assert_eq!(response.reasoning, thoughts());
        let mut earlier = codexcontinue_sdk::Message::assistant("thought");
        earlier.reasoning = thoughts();
        let request = ChatRequest::new("think", vec![earlier, codexcontinue_sdk::Message::user("again")]);
        assert_eq!(respond(&request, &mut |_| {}).unwrap().content, "thought; replayed sig-dummy-1 enc-dummy-2");
        assert_eq!(run("refuse").1.unwrap().finish_reason, FinishReason::Refusal);
        let mut user = codexcontinue_sdk::Message::user("look");
        user.content.push(ContentPart::Image(Image::Url("https://example.com/a.png".into())));
        let request = ChatRequest::new("parts", vec![user]);
        assert_eq!(respond(&request, &mut |_| {}).unwrap().content, "text look\nurl https://example.com/a.png");
    }

    /// `error-*` models fail with their case and emit nothing.
    #[test]
    fn errors() {
        let (deltas, result) = run("error-timeout");
        assert!(deltas.is_empty());
        assert!(matches!(result, Err(ProviderError::Timeout(_))));
        assert!(matches!(run("error-401").1, Err(ProviderError::Unauthorized(_))));
        assert!(matches!(run("error-404").1, Err(ProviderError::NotFound(_))));
        assert!(matches!(run("error-500").1, Err(ProviderError::Unavailable(_))));
    }
}
