//! Our chat request as an Ollama `/api/chat` body: messages keep their roles, sampling options
//! go under `options` (`max_tokens` is `num_predict`), tools take the function shape with
//! arguments as JSON objects, and `stream` is always explicit because Ollama streams by default.

use codexcontinue_sdk::vendor::{function_tool, json_arg, request_body, role_name};
use codexcontinue_sdk::{ChatRequest, Message, ProviderError};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Serialize)]
struct Chat<'a> {
    model: &'a str,
    messages: Vec<Turn>,
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Options::is_empty")]
    options: Options<'a>,
}

#[derive(Debug, Serialize)]
struct Turn {
    role: &'static str,
    content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
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
}

impl Options<'_> {
    fn is_empty(&self) -> bool {
        self.temperature.is_none() && self.top_p.is_none() && self.num_predict.is_none() && self.stop.is_empty()
    }
}

/// The `/api/chat` body for `request`; `stream` asks for newline-delimited JSON.
pub fn chat(request: &ChatRequest, stream: bool) -> Result<Value, ProviderError> {
    let body = Chat {
        model: &request.model,
        messages: request.messages.iter().map(turn).collect::<Result<_, _>>()?,
        stream,
        tools: request.tools.iter().map(function_tool).collect::<Result<_, _>>()?,
        options: Options {
            temperature: request.temperature,
            top_p: request.top_p,
            num_predict: request.max_tokens,
            stop: &request.stop,
        },
    };
    request_body(&body, request.extra_json.as_deref())
}

fn turn(message: &Message) -> Result<Turn, ProviderError> {
    let tool_calls = message
        .tool_calls
        .iter()
        .map(|call| {
            let arguments = json_arg(&call.arguments, || format!("the arguments of tool call {}", call.id))?;
            Ok(json!({"function": {"name": call.name, "arguments": arguments}}))
        })
        .collect::<Result<_, ProviderError>>()?;
    Ok(Turn { role: role_name(message.role), content: message.text(), tool_calls })
}

#[cfg(test)]
mod tests {
    use codexcontinue_sdk::{Role, ToolCall};

    use super::*;

    /// Roles pass through; options go under `options` with Ollama's names.
    #[test]
    fn chat_body() {
        let mut r = ChatRequest::new(
            "llama3.2",
            vec![Message::system("be brief"), Message::user("hi"), Message::assistant("hello"), Message::user("bye")],
        );
        assert_eq!(
            chat(&r, false).unwrap(),
            json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "bye"},
                ],
                "stream": false,
            })
        );
        r.temperature = Some(0.7);
        r.top_p = Some(0.5);
        r.max_tokens = Some(64);
        r.stop = vec!["User:".into()];
        let body = chat(&r, true).unwrap();
        assert_eq!(body["options"], json!({"temperature": 0.7, "top_p": 0.5, "num_predict": 64, "stop": ["User:"]}));
        assert_eq!(body["stream"], true);
    }

    /// Tool calls carry their arguments as JSON objects; tools take the function shape.
    #[test]
    fn tools() {
        let mut call = Message::assistant("");
        call.tool_calls =
            vec![ToolCall { id: "call_0".into(), name: "weather".into(), arguments: r#"{"city":"Oslo"}"#.into() }];
        let mut r =
            ChatRequest::new("llama3.2", vec![Message::user("weather?"), call, Message::new(Role::Tool, "12°C")]);
        r.tools =
            vec![codexcontinue_sdk::ToolSpec { name: "weather".into(), description: None, parameters: "{}".into() }];
        let body = chat(&r, false).unwrap();
        assert_eq!(
            body["messages"][1],
            json!({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Oslo"}}}]})
        );
        assert_eq!(body["messages"][2], json!({"role": "tool", "content": "12°C"}));
        assert_eq!(body["tools"][0], json!({"type": "function", "function": {"name": "weather", "parameters": {}}}));
    }
}
