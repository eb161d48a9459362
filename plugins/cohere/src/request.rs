//! Our requests as Cohere v2 bodies: Chat takes system, user, assistant and tool messages as
//! they are (v2 accepts a system role), `top_p` is `p` (within Cohere's 0.01–0.99), `stop` is
//! `stop_sequences` (at most 5), tools take the function shape and `tool_choice` goes only to
//! models that know it; Embed asks for float vectors of queries or documents.

use codexcontinue_sdk::vendor::{function_tool, request_body, role_name};
use codexcontinue_sdk::{ChatRequest, EmbedRequest, InputType, Message, ProviderError, ToolCall};
use serde::Serialize;
use serde_json::{Value, json};

/// Cohere's documented range for `p`; values outside it are refused with 400.
const MIN_P: f32 = 0.01;
const MAX_P: f32 = 0.99;

/// Cohere refuses more stop sequences than this with 400; the first ones are kept.
const MAX_STOP_SEQUENCES: usize = 5;

/// Model families from before `tool_choice` (Cohere: "only supported on Command R7B 12-2024
/// and newer models"); they answer 400 to it.
const WITHOUT_TOOL_CHOICE: &[&str] = &["command", "command-light", "command-r", "command-r-plus"];

/// Whether `model` accepts `tool_choice`: anything but the older Command and Command R families
/// (with or without a date or `-nightly` suffix), so `command-a-*`, `command-r7b-12-2024` and
/// every later model do.
fn takes_tool_choice(model: &str) -> bool {
    let mut family: Vec<&str> = model.split('-').collect();
    while family.len() > 1
        && family.last().is_some_and(|part| part.chars().all(|c| c.is_ascii_digit()) || *part == "nightly")
    {
        family.pop();
    }
    !WITHOUT_TOOL_CHOICE.contains(&family.join("-").as_str())
}

#[derive(Debug, Serialize)]
struct Chat<'a> {
    model: &'a str,
    messages: Vec<Turn<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Turn<'a> {
    role: &'static str,
    /// Absent on an assistant turn that only calls tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

/// The v2 Chat body for `request`; `stream` asks for server-sent events.
pub fn chat(request: &ChatRequest, stream: bool) -> Result<Value, ProviderError> {
    let tools = request.tools.iter().map(function_tool).collect::<Result<Vec<_>, _>>()?;
    let body = Chat {
        model: &request.model,
        messages: request.messages.iter().map(turn).collect(),
        stream,
        temperature: request.temperature,
        p: request.top_p.map(|p| p.clamp(MIN_P, MAX_P)),
        max_tokens: request.max_tokens,
        stop_sequences: &request.stop[..request.stop.len().min(MAX_STOP_SEQUENCES)],
        // v2 knows only REQUIRED and NONE; leaving it out is `auto`, and a named tool cannot
        // be forced, so the model chooses among all tools.
        tool_choice: match request.tool_choice.as_deref() {
            _ if tools.is_empty() || !takes_tool_choice(&request.model) => None,
            Some("required") => Some("REQUIRED"),
            Some("none") => Some("NONE"),
            _ => None,
        },
        tools,
    };
    request_body(&body, request.extra_json.as_deref())
}

fn turn(message: &Message) -> Turn<'_> {
    let text = message.text();
    let calls_only = !message.tool_calls.is_empty() && text.is_empty();
    Turn {
        role: role_name(message.role),
        content: (!calls_only).then_some(text),
        tool_calls: message.tool_calls.iter().map(tool_call).collect(),
        tool_call_id: message.tool_call_id.as_deref(),
    }
}

fn tool_call(call: &ToolCall) -> Value {
    json!({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}})
}

/// The v2 Embed body: float vectors of the request's inputs, embedded as search queries or
/// as documents to search (the default). `dimensions` becomes `output_dimension` on models that
/// can shorten their vectors (Embed v4); older models have one size and get none.
pub fn embed(model: &str, request: &EmbedRequest) -> Value {
    let input_type = match request.input_type {
        Some(InputType::Query) => "search_query",
        Some(InputType::Document) | None => "search_document",
    };
    let mut body =
        json!({"model": model, "texts": request.inputs, "input_type": input_type, "embedding_types": ["float"]});
    if let Some(dimensions) = request.dimensions.filter(|_| model.starts_with("embed-v4")) {
        body["output_dimension"] = dimensions.into();
    }
    body
}

#[cfg(test)]
mod tests {
    use codexcontinue_sdk::{Role, ToolSpec};

    use super::*;

    /// Roles pass through in order; options take Cohere's names.
    #[test]
    fn chat_body() {
        let mut r = ChatRequest::new(
            "command-r-plus-08-2024",
            vec![Message::system("be brief"), Message::user("hi"), Message::assistant("hello"), Message::user("bye")],
        );
        r.temperature = Some(0.3);
        r.top_p = Some(0.75);
        r.max_tokens = Some(100);
        r.stop = vec!["\n\n".into()];
        assert_eq!(
            chat(&r, true).unwrap(),
            json!({
                "model": "command-r-plus-08-2024",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "bye"},
                ],
                "stream": true,
                "temperature": 0.3,
                "p": 0.75,
                "max_tokens": 100,
                "stop_sequences": ["\n\n"],
            })
        );
        r.extra_json = Some(r#"{"seed":1}"#.into());
        assert_eq!(chat(&r, false).unwrap()["seed"], 1);
    }

    /// Tools, tool calls and tool results take the v2 shapes.
    #[test]
    fn tools() {
        let mut call = Message::assistant("");
        call.tool_calls =
            vec![ToolCall { id: "c1".into(), name: "weather".into(), arguments: r#"{"city":"Oslo"}"#.into() }];
        let mut result = Message::new(Role::Tool, "12°C");
        result.tool_call_id = Some("c1".into());
        let mut r = ChatRequest::new("m", vec![Message::user("weather?"), call, result]);
        r.tools = vec![ToolSpec { name: "weather".into(), description: None, parameters: "{}".into() }];
        r.tool_choice = Some("required".into());
        let body = chat(&r, false).unwrap();
        assert_eq!(body["tool_choice"], "REQUIRED");
        assert_eq!(body["tools"][0]["function"]["name"], "weather");
        assert_eq!(
            body["messages"][1],
            json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]})
        );
        assert_eq!(body["messages"][2], json!({"role": "tool", "content": "12°C", "tool_call_id": "c1"}));
    }

    /// `p` is clamped into 0.01–0.99 and only the first 5 stop sequences are sent.
    #[test]
    fn p_is_clamped_and_stops_capped() {
        let mut r = ChatRequest::new("command-a-03-2025", vec![Message::user("hi")]);
        r.top_p = Some(1.0);
        r.stop = (1..=7).map(|n| format!("s{n}")).collect();
        let body = chat(&r, false).unwrap();
        assert_eq!(body["p"], json!(0.99));
        assert_eq!(body["stop_sequences"], json!(["s1", "s2", "s3", "s4", "s5"]));
        r.top_p = Some(0.0);
        assert_eq!(chat(&r, false).unwrap()["p"], json!(0.01));
        r.top_p = Some(0.5);
        assert_eq!(chat(&r, false).unwrap()["p"], json!(0.5));
    }

    /// `tool_choice` goes to Command A and R7B (and later) models, never to older Command R ones.
    #[test]
    fn tool_choice_only_where_supported() {
        let choice = |model: &str| {
            let mut r = ChatRequest::new(model, vec![Message::user("hi")]);
            r.tools = vec![ToolSpec { name: "weather".into(), description: None, parameters: "{}".into() }];
            r.tool_choice = Some("required".into());
            chat(&r, false).unwrap().get("tool_choice").cloned()
        };
        for model in
            ["command-a-03-2025", "command-a-reasoning-08-2025", "command-r7b-12-2024", "command-a-vision-07-2025"]
        {
            assert_eq!(choice(model), Some(json!("REQUIRED")), "{model}");
        }
        for model in [
            "command-r-plus-08-2024",
            "command-r-08-2024",
            "command-r",
            "command-r-plus",
            "command",
            "command-light-nightly",
        ] {
            assert_eq!(choice(model), None, "{model}");
        }
    }

    /// Queries embed as `search_query`, documents (and unspecified inputs) as `search_document`;
    /// `dimensions` becomes `output_dimension` on Embed v4 only.
    #[test]
    fn embed_body() {
        let mut r = EmbedRequest::new(None, vec!["a".into()]);
        assert_eq!(
            embed("embed-english-v3.0", &r),
            json!({"model": "embed-english-v3.0", "texts": ["a"], "input_type": "search_document", "embedding_types": ["float"]})
        );
        r.input_type = Some(InputType::Query);
        r.dimensions = Some(256);
        assert_eq!(embed("embed-english-v3.0", &r)["input_type"], "search_query");
        assert_eq!(embed("embed-english-v3.0", &r).get("output_dimension"), None);
        assert_eq!(embed("embed-v4.0", &r)["output_dimension"], 256);
        r.input_type = Some(InputType::Document);
        assert_eq!(embed("embed-v4.0", &r)["input_type"], "search_document");
    }
}
