//! Reading a dialect's message list: what the client added this turn, what to recall by, the
//! system prompt, and how big it all is.

use serde_json::{Value, json};

use crate::memory::{Input, PromptMessage};
use crate::runtime::types::{ContentPart, Image, Message, Role, ToolCall};
use crate::store;
use crate::tokens;

/// Where the client's new input starts: after the last reply it has seen.
pub fn input_start(messages: &[Message]) -> usize {
    messages.iter().rposition(|m| m.role == Role::Assistant).map_or(0, |i| i + 1)
}

/// The client's new input (its message, or tool results with their call ids), as memory
/// stores it.
pub fn new_input(messages: &[Message]) -> Vec<Input> {
    messages[input_start(messages)..]
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| Input { role: store_role(m.role), content: m.plain_text(), metadata: input_metadata(m) })
        .collect()
}

/// What memory keeps beside an input's text: the call a tool result answers, and the images
/// the message held, by media type (`url` for a linked image); never their bytes, so a stored
/// turn replays as text.
fn input_metadata(message: &Message) -> Option<Value> {
    let mut metadata = serde_json::Map::new();
    if let Some(id) = &message.tool_call_id {
        metadata.insert("tool_call_id".into(), json!(id));
    }
    let images: Vec<&str> = message
        .content
        .iter()
        .filter_map(|part| match part {
            ContentPart::Image(Image::Base64(data)) => Some(data.media_type.as_str()),
            ContentPart::Image(Image::Url(url)) => Some(data_url_media_type(url).unwrap_or("url")),
            ContentPart::Text(_) => None,
        })
        .collect();
    if !images.is_empty() {
        metadata.insert("images".into(), json!(images));
    }
    (!metadata.is_empty()).then_some(Value::Object(metadata))
}

/// The media type of a `data:<type>;base64,` URL.
fn data_url_media_type(url: &str) -> Option<&str> {
    url.strip_prefix("data:")?.split([';', ',']).next()
}

/// A stored message as the provider should see it again: tool results keep their call ids,
/// replies their tool calls, and their reasoning blocks when `provider` (as replies label it)
/// produced them.
pub fn replay(message: &store::Message, provider: &str) -> Message {
    restore(message.role, &message.content, message.metadata.as_ref(), provider)
}

/// A message of memory's prompt as `provider` should see it (the same replay).
pub fn from_memory(message: &PromptMessage, provider: &str) -> Message {
    restore(message.role, &message.content, message.metadata.as_ref(), provider)
}

fn restore(role: store::Role, content: &str, metadata: Option<&Value>, provider: &str) -> Message {
    let role = match role {
        store::Role::System => Role::System,
        store::Role::User => Role::User,
        store::Role::Assistant => Role::Assistant,
        store::Role::Tool => Role::Tool,
    };
    let mut out = Message::text(role, content);
    out.tool_call_id = metadata.and_then(|m| m["tool_call_id"].as_str()).map(str::to_string);
    out.tool_calls = metadata
        .and_then(|m| m["tool_calls"].as_array())
        .map(|calls| {
            calls
                .iter()
                .map(|c| ToolCall {
                    id: c["id"].as_str().unwrap_or_default().to_string(),
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    arguments: c["arguments"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    out.reasoning = super::reasoning::restore(metadata, provider);
    out
}

/// What memory recalls by: the newest user message, else (a turn of tool results only) the
/// newest message.
pub fn query(messages: &[Message]) -> Option<String> {
    let user = messages.iter().rev().find(|m| m.role == Role::User);
    user.or(messages.iter().rev().find(|m| m.role != Role::System)).map(Message::plain_text)
}

/// The client's system messages as one prompt.
pub fn system(messages: &[Message]) -> Option<String> {
    let parts: Vec<String> = messages.iter().filter(|m| m.role == Role::System).map(Message::plain_text).collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// Tokens the client's messages take.
pub fn tokens(messages: &[Message]) -> usize {
    let texts: Vec<String> = messages.iter().map(Message::plain_text).collect();
    tokens::count_prompt(texts.iter().map(String::as_str))
}

fn store_role(role: Role) -> store::Role {
    match role {
        Role::System => store::Role::System,
        Role::User => store::Role::User,
        Role::Assistant => store::Role::Assistant,
        Role::Tool => store::Role::Tool,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: Role, content: &str) -> Message {
        Message::text(role, content)
    }

    /// Tool results after a reply are the new input; the user's earlier message is not.
    #[test]
    fn the_new_input_follows_the_last_reply() {
        let messages = [
            message(Role::System, "be brief"),
            message(Role::User, "weather?"),
            message(Role::Assistant, ""),
            Message { tool_call_id: Some("call_1".into()), ..message(Role::Tool, "sunny") },
        ];
        let input = new_input(&messages);
        assert_eq!(input.len(), 1);
        assert_eq!((input[0].role, input[0].content.as_str()), (store::Role::Tool, "sunny"));
        assert_eq!(input[0].metadata, Some(json!({ "tool_call_id": "call_1" })));
        assert_eq!(query(&messages).as_deref(), Some("weather?"));
        assert_eq!(system(&messages).as_deref(), Some("be brief"));
        assert_eq!(new_input(&messages[..2]).len(), 1, "a first message is all input");
    }
}
