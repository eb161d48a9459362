//! Our chat request as a Messages API body: system prompts go to the top-level `system` field,
//! turns alternate user/assistant (consecutive same-role turns merged), tool calls and results
//! become `tool_use` / `tool_result` blocks, and `max_tokens` is always set, as the API requires.

use codexcontinue_sdk::vendor::{json_arg, request_body};
use codexcontinue_sdk::{ChatRequest, Message, ProviderError, Role, ToolSpec};
use serde::Serialize;
use serde_json::{Value, json};

/// `max_tokens` when neither the request nor the manifest's `max_tokens` sets one.
pub const MAX_TOKENS: u32 = 1024;

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
    ToolUse { id: String, name: String, input: Value },
    ToolResult { tool_use_id: String, content: String },
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
    let body = Body {
        model: &request.model,
        max_tokens: request.max_tokens.unwrap_or(default_max_tokens),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: turns(&request.messages)?,
        temperature: request.temperature,
        top_p: request.top_p,
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
            Role::User => Turn { role: "user", content: Content::Text(message.text()) },
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

fn assistant(message: &Message) -> Result<Turn, ProviderError> {
    if message.tool_calls.is_empty() {
        return Ok(Turn { role: "assistant", content: Content::Text(message.text()) });
    }
    let mut blocks = text_block(&message.text());
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
        r.top_p = Some(0.9);
        r.stop = vec!["END".into()];
        assert_eq!(
            body(&r, 1024, false).unwrap(),
            json!({
                "model": "claude-test",
                "max_tokens": 1024,
                "system": "be brief\n\nin French",
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 0.2,
                "top_p": 0.9,
                "stop_sequences": ["END"],
            })
        );
        r.max_tokens = Some(50);
        r.extra_json = Some(r#"{"metadata":{"user_id":"u1"}}"#.into());
        let streamed = body(&r, 1024, true).unwrap();
        assert_eq!((streamed["max_tokens"].clone(), streamed["stream"].clone()), (json!(50), json!(true)));
        assert_eq!(streamed["metadata"], json!({"user_id": "u1"}));
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
