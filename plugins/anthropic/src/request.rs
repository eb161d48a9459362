//! Our chat request as a Messages API body: system prompts go to the top-level `system` field,
//! turns alternate user/assistant (consecutive same-role turns merged), tool calls and results
//! become `tool_use` / `tool_result` blocks, images `image` blocks, an assistant turn's
//! reasoning goes back first as `thinking` / `redacted_thinking` blocks, and `max_tokens` is
//! always set, as the API requires.

use codexcontinue_sdk::vendor::{json_arg, request_body};
use codexcontinue_sdk::{ChatRequest, ContentPart, Image, Message, ProviderError, ReasoningBlock, Role, ToolSpec};
use serde::Serialize;
use serde_json::{Value, json};

/// `max_tokens` for a model whose output limit this plugin does not know, when neither the
/// request nor the manifest's `max_tokens` sets one: long enough that ordinary answers are not
/// cut off, and within every current Claude model's limit.
pub const MAX_TOKENS: u32 = 8192;

/// The most output tokens each model family may produce (Anthropic's models overview), by id
/// prefix; the first match wins, so longer prefixes come first.
const MAX_OUTPUT: &[(&str, u32)] = &[
    ("claude-haiku-4-5", 64_000),
    ("claude-sonnet-4-5", 64_000),
    ("claude-sonnet-4", 64_000),
    ("claude-opus-4", 32_000),
    ("claude-3-7-sonnet", 64_000),
    ("claude-3-5-haiku", 8_192),
    ("claude-3-haiku", 4_096),
];

/// The model's output limit, when this plugin knows it.
pub fn max_output(model: &str) -> Option<u32> {
    MAX_OUTPUT.iter().find(|(prefix, _)| model.starts_with(prefix)).map(|(_, limit)| *limit)
}

/// `max_tokens` to send: the client's, else the model's whole output limit (replies must not be
/// cut short for want of a limit the client never asked for), else `default`; never above the
/// model's limit, which Anthropic refuses with 400.
fn max_tokens(request: &ChatRequest, default: u32) -> u32 {
    let limit = max_output(&request.model);
    let wanted = request.max_tokens.or(limit).unwrap_or(default);
    limit.map_or(wanted, |limit| wanted.min(limit))
}

/// Anthropic's sampling range is 0–1 (OpenAI's is 0–2), so a higher temperature is clamped; and
/// Claude 4.5-class models refuse `temperature` and `top_p` together, so `top_p` goes only alone.
fn sampling(request: &ChatRequest) -> (Option<f32>, Option<f32>) {
    match request.temperature {
        Some(t) => (Some(t.clamp(0.0, 1.0)), None),
        None => (None, request.top_p),
    }
}

#[derive(Debug, Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// One turn of `messages`.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Turn {
    role: &'static str,
    content: Content,
}

/// A turn's content: a plain string while it is only text, content blocks otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text { text: String },
    Image { source: ImageSource },
    Thinking { thinking: String, signature: String },
    RedactedThinking { data: String },
    ToolUse { id: String, name: String, input: Value },
    ToolResult { tool_use_id: String, content: String },
}

/// Where an `image` block's bytes come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

#[derive(Debug, Serialize)]
struct Tool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Value,
}

/// The Messages body for `request`; `stream` asks for server-sent events.
pub fn body(request: &ChatRequest, default_max_tokens: u32, stream: bool) -> Result<Value, ProviderError> {
    let system: Vec<String> = request.messages.iter().filter(|m| m.role == Role::System).map(Message::text).collect();
    let tools = request.tools.iter().map(tool).collect::<Result<Vec<_>, _>>()?;
    let tool_choice = request.tool_choice.as_deref().filter(|_| !tools.is_empty()).map(tool_choice);
    let (temperature, top_p) = sampling(request);
    let body = Body {
        model: &request.model,
        max_tokens: max_tokens(request, default_max_tokens),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: turns(&request.messages)?,
        temperature,
        top_p,
        stop_sequences: &request.stop,
        tools,
        tool_choice,
        stream,
    };
    request_body(&body, request.extra_json.as_deref())
}

/// The non-system messages as alternating turns.
fn turns(messages: &[Message]) -> Result<Vec<Turn>, ProviderError> {
    let mut turns: Vec<Turn> = Vec::new();
    for message in messages {
        let turn = match message.role {
            Role::System => continue,
            Role::User => Turn { role: "user", content: user(message) },
            Role::Assistant => assistant(message)?,
            // Tool results travel in a user turn, as blocks answering the assistant's tool_use.
            Role::Tool => Turn {
                role: "user",
                content: Content::Blocks(vec![Block::ToolResult {
                    tool_use_id: message.tool_call_id.clone().unwrap_or_default(),
                    content: message.text(),
                }]),
            },
        };
        match turns.last_mut() {
            // The API rejects two turns in a row from the same role.
            Some(last) if last.role == turn.role => last.content = merge(&last.content, turn.content),
            // The conversation must open with the user; a memory window cut between a question
            // and its answer can start with the answer, which is dropped.
            None if turn.role == "assistant" => {}
            _ => turns.push(turn),
        }
    }
    Ok(turns)
}

/// A user turn: plain text, or blocks in order when it carries images.
fn user(message: &Message) -> Content {
    if !message.content.iter().any(|part| matches!(part, ContentPart::Image(_))) {
        return Content::Text(message.text());
    }
    let blocks = message
        .content
        .iter()
        .flat_map(|part| match part {
            ContentPart::Text(text) => text_block(text),
            ContentPart::Image(image) => vec![Block::Image { source: image_source(image) }],
        })
        .collect();
    Content::Blocks(blocks)
}

/// An image as Anthropic's source: inline bytes stay base64; a `data:` URL is unpacked into
/// base64 (Anthropic fetches only http(s) URLs); any other URL is fetched by Anthropic.
fn image_source(image: &Image) -> ImageSource {
    match image {
        Image::Base64(data) => ImageSource::Base64 { media_type: data.media_type.clone(), data: data.data.clone() },
        Image::Url(url) => match url.strip_prefix("data:").and_then(|rest| rest.split_once(";base64,")) {
            Some((media_type, data)) => ImageSource::Base64 { media_type: media_type.into(), data: data.into() },
            None => ImageSource::Url { url: url.clone() },
        },
    }
}

/// A reasoning block as Anthropic wants it back: redacted data as `redacted_thinking`, signed
/// text as `thinking`. A block with neither signature nor data (another vendor's reasoning) is
/// left out, since Anthropic refuses thinking it cannot verify.
fn reasoning_block(block: &ReasoningBlock) -> Option<Block> {
    match (&block.encrypted_content, &block.signature) {
        (Some(data), _) => Some(Block::RedactedThinking { data: data.clone() }),
        (None, Some(signature)) => Some(Block::Thinking { thinking: block.text.clone(), signature: signature.clone() }),
        (None, None) => None,
    }
}

/// An assistant turn: its reasoning first (unchanged, as Anthropic requires when thinking is
/// on), then its text, then its tool calls.
fn assistant(message: &Message) -> Result<Turn, ProviderError> {
    let mut blocks: Vec<Block> = message.reasoning.iter().filter_map(reasoning_block).collect();
    if message.tool_calls.is_empty() && blocks.is_empty() {
        return Ok(Turn { role: "assistant", content: Content::Text(message.text()) });
    }
    blocks.extend(text_block(&message.text()));
    for call in &message.tool_calls {
        let input = json_arg(&call.arguments, || format!("the arguments of tool call {}", call.id))?;
        blocks.push(Block::ToolUse { id: call.id.clone(), name: call.name.clone(), input });
    }
    Ok(Turn { role: "assistant", content: Content::Blocks(blocks) })
}

/// Joins two turns of one role: text stays text (paragraphs apart), anything else becomes blocks.
fn merge(first: &Content, second: Content) -> Content {
    match (first, second) {
        (Content::Text(a), Content::Text(b)) => Content::Text(format!("{a}\n\n{b}")),
        (first, second) => Content::Blocks([into_blocks(first.clone()), into_blocks(second)].concat()),
    }
}

fn into_blocks(content: Content) -> Vec<Block> {
    match content {
        Content::Text(text) => text_block(&text),
        Content::Blocks(blocks) => blocks,
    }
}

/// A text block, or none for empty text (the API refuses empty text blocks).
fn text_block(text: &str) -> Vec<Block> {
    if text.is_empty() { Vec::new() } else { vec![Block::Text { text: text.to_owned() }] }
}

fn tool(spec: &ToolSpec) -> Result<Tool<'_>, ProviderError> {
    let input_schema = json_arg(&spec.parameters, || format!("the parameter schema of tool {}", spec.name))?;
    Ok(Tool { name: &spec.name, description: spec.description.as_deref(), input_schema })
}

/// Our `tool-choice` (`auto`, `none`, `required` or a tool name) in Anthropic's shape.
fn tool_choice(choice: &str) -> Value {
    match choice {
        "auto" => json!({"type": "auto"}),
        "none" => json!({"type": "none"}),
        "required" => json!({"type": "any"}),
        name => json!({"type": "tool", "name": name}),
    }
}

#[cfg(test)]
mod tests {
    use codexcontinue_sdk::ToolCall;

    use super::*;

    fn request(messages: Vec<Message>) -> ChatRequest {
        ChatRequest::new("claude-test", messages)
    }

    /// System prompts move to `system`; options map to their Anthropic names; max_tokens defaults.
    #[test]
    fn system_options_and_default_max_tokens() {
        let mut r = request(vec![Message::system("be brief"), Message::user("hi"), Message::system("in French")]);
        r.temperature = Some(0.2);
        r.stop = vec!["END".into()];
        assert_eq!(
            body(&r, 1024, false).unwrap(),
            json!({
                "model": "claude-test",
                "max_tokens": 1024,
                "system": "be brief\n\nin French",
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 0.2,
                "stop_sequences": ["END"],
            })
        );
        r.max_tokens = Some(50);
        r.extra_json = Some(r#"{"metadata":{"user_id":"u1"}}"#.into());
        let streamed = body(&r, 1024, true).unwrap();
        assert_eq!((streamed["max_tokens"].clone(), streamed["stream"].clone()), (json!(50), json!(true)));
        assert_eq!(streamed["metadata"], json!({"user_id": "u1"}));
    }

    /// Both temperature and top_p: only temperature goes (Claude 4.5 refuses both); it is
    /// clamped to Anthropic's 0–1; top_p alone still goes.
    #[test]
    fn temperature_wins_over_top_p_and_is_clamped() {
        let mut r = request(vec![Message::user("hi")]);
        r.temperature = Some(1.7);
        r.top_p = Some(0.9);
        let sent = body(&r, 1024, false).unwrap();
        assert_eq!((sent["temperature"].clone(), sent.get("top_p")), (json!(1.0), None));
        r.temperature = None;
        let sent = body(&r, 1024, false).unwrap();
        assert_eq!((sent.get("temperature"), sent["top_p"].clone()), (None, json!(0.9)));
    }

    /// Without a client limit a known model gets its whole output limit, an unknown one the
    /// default; a client limit above the model's is cut to it.
    #[test]
    fn max_tokens_follow_the_model() {
        let sent = |model: &str, max: Option<u32>| {
            let mut r = ChatRequest::new(model, vec![Message::user("hi")]);
            r.max_tokens = max;
            body(&r, MAX_TOKENS, false).unwrap()["max_tokens"].clone()
        };
        assert_eq!(sent("claude-haiku-4-5", None), json!(64_000));
        assert_eq!(sent("claude-sonnet-4-5-20250929", None), json!(64_000));
        assert_eq!(sent("claude-opus-4-1", None), json!(32_000));
        assert_eq!(sent("claude-future-9", None), json!(8192));
        assert_eq!(sent("claude-opus-4-1", Some(100_000)), json!(32_000));
        assert_eq!(sent("claude-haiku-4-5", Some(50)), json!(50));
        assert_eq!(sent("claude-future-9", Some(100_000)), json!(100_000));
    }

    /// Image parts become `image` blocks in order with the text: base64 with its media type, a
    /// data: URL unpacked into base64, an https URL as a url source.
    #[test]
    fn images_become_image_blocks() {
        let mut user = Message::user("What is in these?");
        user.content.push(ContentPart::Image(Image::Base64(codexcontinue_sdk::ImageData {
            media_type: "image/png".into(),
            data: "iVBORw0KGgo=".into(),
        })));
        user.content.push(ContentPart::Image(Image::Url("https://example.com/cat.jpg".into())));
        user.content.push(ContentPart::Image(Image::Url("data:image/webp;base64,UklGRg==".into())));
        assert_eq!(
            body(&request(vec![user]), 1024, false).unwrap()["messages"],
            json!([{"role": "user", "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}},
            ]}])
        );
    }

    /// An assistant turn's reasoning goes back first, unchanged: thinking with its signature,
    /// redacted thinking as its data; unsigned reasoning from another vendor is left out.
    #[test]
    fn reasoning_is_replayed_before_text_and_tool_use() {
        let block = |text: &str, signature: Option<&str>, data: Option<&str>| ReasoningBlock {
            text: text.into(),
            signature: signature.map(Into::into),
            encrypted_content: data.map(Into::into),
            id: None,
        };
        let mut answer = Message::assistant("Checking.");
        answer.reasoning = vec![
            block("Need the weather.", Some("EqQBsig"), None),
            block("", None, Some("EmwKredacted")),
            block("another vendor's summary", None, None),
        ];
        answer.tool_calls =
            vec![codexcontinue_sdk::ToolCall { id: "toolu_1".into(), name: "weather".into(), arguments: "{}".into() }];
        assert_eq!(
            body(&request(vec![Message::user("weather?"), answer]), 1024, false).unwrap()["messages"][1],
            json!({"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Need the weather.", "signature": "EqQBsig"},
                {"type": "redacted_thinking", "data": "EmwKredacted"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}},
            ]})
        );
    }

    /// Consecutive same-role turns merge, and a leading assistant turn is dropped.
    #[test]
    fn turns_alternate() {
        let r = request(vec![
            Message::assistant("orphan answer"),
            Message::user("one"),
            Message::user("two"),
            Message::assistant("three"),
            Message::assistant("four"),
            Message::user("five"),
        ]);
        assert_eq!(
            body(&r, 1024, false).unwrap()["messages"],
            json!([
                {"role": "user", "content": "one\n\ntwo"},
                {"role": "assistant", "content": "three\n\nfour"},
                {"role": "user", "content": "five"},
            ])
        );
    }

    /// Tools, tool calls and tool results take Anthropic's block shapes.
    #[test]
    fn tools_and_tool_blocks() {
        let mut call = Message::assistant("Let me check.");
        call.tool_calls =
            vec![ToolCall { id: "toolu_1".into(), name: "weather".into(), arguments: r#"{"city":"Oslo"}"#.into() }];
        let mut result = Message::new(Role::Tool, "12°C");
        result.tool_call_id = Some("toolu_1".into());
        let mut r = request(vec![Message::user("weather?"), call, result, Message::user("and tomorrow?")]);
        r.tools = vec![ToolSpec {
            name: "weather".into(),
            description: Some("Current weather".into()),
            parameters: r#"{"type":"object"}"#.into(),
        }];
        r.tool_choice = Some("required".into());
        let body = body(&r, 1024, false).unwrap();
        assert_eq!(
            body["tools"],
            json!([{"name": "weather", "description": "Current weather", "input_schema": {"type": "object"}}])
        );
        assert_eq!(body["tool_choice"], json!({"type": "any"}));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "12°C"},
                    {"type": "text", "text": "and tomorrow?"},
                ]},
            ])
        );
        assert_eq!(tool_choice("weather"), json!({"type": "tool", "name": "weather"}));
    }

    /// Arguments or schemas that are not JSON are the caller's mistake.
    #[test]
    fn invalid_tool_json() {
        let mut call = Message::assistant("");
        call.tool_calls = vec![ToolCall { id: "t".into(), name: "n".into(), arguments: "{".into() }];
        assert!(matches!(
            body(&request(vec![Message::user("q"), call]), 1024, false),
            Err(ProviderError::BadRequest(_))
        ));
        let mut r = request(vec![Message::user("q")]);
        r.tools = vec![ToolSpec { name: "n".into(), description: None, parameters: "nope".into() }];
        assert!(matches!(body(&r, 1024, false), Err(ProviderError::BadRequest(_))));
    }
}
