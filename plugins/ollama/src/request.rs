//! Our chat request as an Ollama `/api/chat` body: messages keep their roles, sampling options
//! go under `options` (`max_tokens` is `num_predict`, and `num_ctx` is sized to the prompt so
//! Ollama's small default window does not cut it), tools take the function shape with arguments
//! as JSON objects, tool results name their tool (`tool_name`), user images go as base64
//! `images`, and `stream` is always explicit because Ollama streams by default.

use codexcontinue_sdk::vendor::{function_tool, json_arg, request_body, role_name};
use codexcontinue_sdk::{ChatRequest, ContentPart, Image, Message, ProviderError, Role};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Serialize)]
struct Chat<'a> {
    model: &'a str,
    messages: Vec<Turn<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    options: Options<'a>,
}

#[derive(Debug, Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: String,
    /// An assistant turn's earlier thinking, replayed as Ollama returned it.
    #[serde(skip_serializing_if = "String::is_empty")]
    thinking: String,
    /// A user turn's images, base64 without a `data:` prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
    /// A tool turn's tool: Ollama matches results to calls by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
}

/// Ollama's model options (the Modelfile `PARAMETER`s) that a chat request can set.
#[derive(Debug, Serialize)]
struct Options<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    num_ctx: u32,
}

/// Ollama's own default context window (`num_ctx`) for most installs; we never ask for less.
const MIN_NUM_CTX: u32 = 4096;

/// `num_ctx` is rounded up to a multiple of this, so a growing conversation changes it (and
/// makes Ollama reload the model with a new window) only every few thousand tokens.
const NUM_CTX_STEP: u32 = 2048;

/// Room for the reply when the request sets no `max_tokens`.
const DEFAULT_REPLY_TOKENS: u32 = 2048;

/// The largest `num_ctx` asked for unless the manifest's `max_num_ctx` says otherwise: 128k,
/// the window today's Llama, Qwen and Gemma models have and the host sizes prompts for. The
/// plugin does not look up each model's own limit before chatting (that would be an extra
/// `/api/show` per call), and Ollama caps `num_ctx` at the model's trained length itself.
pub const MAX_NUM_CTX: u32 = 131_072;

/// A generous estimate of the prompt's tokens: one per 3 bytes of text (English averages about
/// 4 bytes per token, so this errs on the side of a larger window), images at 768 tokens each
/// (enough for the common vision encoders), plus the tool schemas.
fn estimated_prompt_tokens(request: &ChatRequest) -> u32 {
    let bytes: usize = request
        .messages
        .iter()
        .map(|m| m.text().len() + m.tool_calls.iter().map(|c| c.arguments.len() + c.name.len()).sum::<usize>())
        .sum::<usize>()
        + request
            .tools
            .iter()
            .map(|t| t.parameters.len() + t.name.len() + t.description.as_ref().map_or(0, String::len))
            .sum::<usize>();
    let images =
        request.messages.iter().flat_map(|m| &m.content).filter(|p| matches!(p, ContentPart::Image(_))).count();
    u32::try_from(bytes.div_ceil(3) + images * 768 + request.messages.len() * 4).unwrap_or(u32::MAX)
}

/// The `num_ctx` for `request`: the estimated prompt plus the reply, rounded up to
/// [`NUM_CTX_STEP`], at least [`MIN_NUM_CTX`] and at most `cap`.
fn num_ctx(request: &ChatRequest, cap: u32) -> u32 {
    let needed = estimated_prompt_tokens(request).saturating_add(request.max_tokens.unwrap_or(DEFAULT_REPLY_TOKENS));
    let rounded = needed.div_ceil(NUM_CTX_STEP).saturating_mul(NUM_CTX_STEP);
    rounded.max(MIN_NUM_CTX).min(cap.max(MIN_NUM_CTX))
}

/// The `/api/chat` body for `request`, with `num_ctx` at most `max_num_ctx`; `stream` asks for
/// newline-delimited JSON. Fails with `bad-request` for an image given by URL (Ollama takes
/// image bytes only) or tool-call arguments that are not JSON.
pub fn chat(request: &ChatRequest, stream: bool, max_num_ctx: u32) -> Result<Value, ProviderError> {
    let body = Chat {
        model: &request.model,
        messages: request.messages.iter().map(|m| turn(m, &request.messages)).collect::<Result<_, _>>()?,
        stream,
        tools: request.tools.iter().map(function_tool).collect::<Result<_, _>>()?,
        options: Options {
            temperature: request.temperature,
            top_p: request.top_p,
            num_predict: request.max_tokens,
            stop: &request.stop,
            num_ctx: num_ctx(request, max_num_ctx),
        },
    };
    request_body(&body, request.extra_json.as_deref())
}

fn turn<'a>(message: &'a Message, conversation: &'a [Message]) -> Result<Turn<'a>, ProviderError> {
    let tool_calls = message
        .tool_calls
        .iter()
        .map(|call| {
            let arguments = json_arg(&call.arguments, || format!("the arguments of tool call {}", call.id))?;
            Ok(json!({"id": call.id, "function": {"name": call.name, "arguments": arguments}}))
        })
        .collect::<Result<_, ProviderError>>()?;
    let images = message
        .content
        .iter()
        .filter_map(|part| match part {
            ContentPart::Image(image) => Some(image_base64(image)),
            ContentPart::Text(_) => None,
        })
        .collect::<Result<_, _>>()?;
    let tool_name = match message.role {
        Role::Tool => message.name.as_deref().or_else(|| called_tool(conversation, message.tool_call_id.as_deref()?)),
        _ => None,
    };
    let thinking = match message.role {
        Role::Assistant => message.reasoning.iter().map(|r| r.text.as_str()).collect(),
        _ => String::new(),
    };
    Ok(Turn { role: role_name(message.role), content: message.text(), thinking, images, tool_calls, tool_name })
}

/// The name of the tool whose call `id` an assistant message in `conversation` made.
fn called_tool<'a>(conversation: &'a [Message], id: &str) -> Option<&'a str> {
    conversation.iter().flat_map(|m| &m.tool_calls).find(|call| call.id == id).map(|call| call.name.as_str())
}

/// An image as the bare base64 Ollama wants: inline bytes as they are, a `data:…;base64,` URL
/// unpacked; a web URL is refused, since Ollama does not fetch images.
fn image_base64(image: &Image) -> Result<&str, ProviderError> {
    match image {
        Image::Base64(data) => Ok(&data.data),
        Image::Url(url) => url
            .strip_prefix("data:")
            .and_then(|rest| rest.split_once(";base64,"))
            .map(|(_, data)| data)
            .ok_or_else(|| ProviderError::BadRequest("Ollama takes images as bytes, not by URL".into())),
    }
}

#[cfg(test)]
mod tests {
    use codexcontinue_sdk::{ImageData, ReasoningBlock, Role, ToolCall, ToolSpec};

    use super::*;

    /// Roles pass through; options go under `options` with Ollama's names, `num_ctx` included.
    #[test]
    fn chat_body() {
        let mut r = ChatRequest::new(
            "llama3.2",
            vec![Message::system("be brief"), Message::user("hi"), Message::assistant("hello"), Message::user("bye")],
        );
        assert_eq!(
            chat(&r, false, MAX_NUM_CTX).unwrap(),
            json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "bye"},
                ],
                "stream": false,
                "options": {"num_ctx": 4096},
            })
        );
        r.temperature = Some(0.7);
        r.top_p = Some(0.5);
        r.max_tokens = Some(64);
        r.stop = vec!["User:".into()];
        let body = chat(&r, true, MAX_NUM_CTX).unwrap();
        assert_eq!(
            body["options"],
            json!({"temperature": 0.7, "top_p": 0.5, "num_predict": 64, "stop": ["User:"], "num_ctx": 4096})
        );
        assert_eq!(body["stream"], true);
    }

    /// `num_ctx` covers the estimated prompt plus the reply, in steps of 2048, never below
    /// Ollama's 4096 default and never above the cap.
    #[test]
    fn num_ctx_fits_the_prompt() {
        let long = "word ".repeat(24_000); // 120 000 bytes: about 40 000 tokens by our estimate
        let mut r = ChatRequest::new("llama3.2", vec![Message::system(long), Message::user("sum it up")]);
        r.max_tokens = Some(1000);
        let estimate = estimated_prompt_tokens(&r);
        assert!(estimate >= 40_000, "{estimate}");
        let ctx = chat(&r, false, MAX_NUM_CTX).unwrap()["options"]["num_ctx"].as_u64().unwrap() as u32;
        assert_eq!(ctx % NUM_CTX_STEP, 0);
        assert!(ctx >= estimate + 1000 && ctx < estimate + 1000 + NUM_CTX_STEP, "{ctx} for {estimate}");
        assert_eq!(chat(&r, false, 16_384).unwrap()["options"]["num_ctx"], 16_384);
        r.messages = vec![Message::user("hi")];
        r.max_tokens = None;
        assert_eq!(chat(&r, false, MAX_NUM_CTX).unwrap()["options"]["num_ctx"], 4096);
    }

    /// Tool calls carry their ids and arguments as JSON objects; a tool result names its tool,
    /// found by the call id it answers; tools take the function shape.
    #[test]
    fn tools() {
        let mut call = Message::assistant("");
        call.tool_calls = vec![
            ToolCall { id: "call_0".into(), name: "weather".into(), arguments: r#"{"city":"Oslo"}"#.into() },
            ToolCall { id: "call_1".into(), name: "time".into(), arguments: "{}".into() },
        ];
        let result = |id: &str, text: &str| {
            let mut m = Message::new(Role::Tool, text);
            m.tool_call_id = Some(id.into());
            m
        };
        let mut r = ChatRequest::new(
            "llama3.2",
            vec![Message::user("weather and time?"), call, result("call_1", "12:00"), result("call_0", "12°C")],
        );
        r.tools = vec![ToolSpec { name: "weather".into(), description: None, parameters: "{}".into() }];
        let body = chat(&r, false, MAX_NUM_CTX).unwrap();
        assert_eq!(
            body["messages"][1],
            json!({"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_0", "function": {"name": "weather", "arguments": {"city": "Oslo"}}},
                {"id": "call_1", "function": {"name": "time", "arguments": {}}},
            ]})
        );
        assert_eq!(body["messages"][2], json!({"role": "tool", "content": "12:00", "tool_name": "time"}));
        assert_eq!(body["messages"][3], json!({"role": "tool", "content": "12°C", "tool_name": "weather"}));
        assert_eq!(body["tools"][0], json!({"type": "function", "function": {"name": "weather", "parameters": {}}}));
    }

    /// User images go as bare base64 in `images` (`data:` URLs unpacked; web URLs refused), and
    /// an assistant's reasoning goes back as `thinking`.
    #[test]
    fn images_and_thinking() {
        let mut user = Message::user("what is this?");
        user.content.push(ContentPart::Image(Image::Base64(ImageData {
            media_type: "image/png".into(),
            data: "iVBORw0KGgo=".into(),
        })));
        user.content.push(ContentPart::Image(Image::Url("data:image/jpeg;base64,/9j/4AAQ".into())));
        let mut answer = Message::assistant("A cat.");
        answer.reasoning =
            vec![ReasoningBlock { text: "Whiskers.".into(), signature: None, encrypted_content: None, id: None }];
        let r = ChatRequest::new("gemma3", vec![user.clone(), answer]);
        let body = chat(&r, false, MAX_NUM_CTX).unwrap();
        assert_eq!(
            body["messages"][0],
            json!({"role": "user", "content": "what is this?", "images": ["iVBORw0KGgo=", "/9j/4AAQ"]})
        );
        assert_eq!(body["messages"][1], json!({"role": "assistant", "content": "A cat.", "thinking": "Whiskers."}));
        user.content.push(ContentPart::Image(Image::Url("https://example.com/cat.png".into())));
        let r = ChatRequest::new("gemma3", vec![user]);
        assert!(matches!(chat(&r, false, MAX_NUM_CTX), Err(ProviderError::BadRequest(_))));
    }
}
