//! Building blocks for plugins that map a vendor's HTTP API: [`request_body`] (JSON with
//! `extra-json` merged in), [`role_name`], [`function_tool`] and [`json_arg`] for tools,
//! [`model_info`], [`read_stream`] (drives a streamed body through the [`sse`] parser or
//! [`ndjson`] splitter until the vendor's final event), [`parse_event`], and [`Collector`],
//! which builds the reply while emitting it.

use std::ops::ControlFlow;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    ChatResponse, FinishReason, HttpError, ModelInfo, ProviderError, Role, StreamEvent, ToolCall, ToolCallDelta,
    ToolSpec, Usage, ndjson, sse,
};

/// `body` as a JSON object with the request's `extra-json` object merged over it.
///
/// The body goes through JSON text rather than [`serde_json::to_value`] so that an `f32` such as
/// a temperature of `0.2` stays `0.2` on the wire instead of widening to `0.20000000298023224`.
/// Fails with `bad-request` when `extra` is not a JSON object.
pub fn request_body<T: Serialize>(body: &T, extra: Option<&str>) -> Result<Value, ProviderError> {
    let encode = |e: serde_json::Error| ProviderError::Other(format!("cannot encode the request body: {e}"));
    let mut value: Value = serde_json::from_str(&serde_json::to_string(body).map_err(encode)?).map_err(encode)?;
    let Some(extra) = extra else { return Ok(value) };
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(extra) else {
        return Err(ProviderError::BadRequest("extra-json must be a JSON object".into()));
    };
    if let Value::Object(object) = &mut value {
        object.extend(fields);
    }
    Ok(value)
}

/// `text` from our request (tool arguments, a tool's parameter schema) parsed as JSON, for
/// vendors that want it as a JSON value; `what` names it in the `bad-request` error.
pub fn json_arg(text: &str, what: impl FnOnce() -> String) -> Result<Value, ProviderError> {
    serde_json::from_str(text).map_err(|e| ProviderError::BadRequest(format!("{} is not JSON: {e}", what())))
}

/// A tool in the function shape OpenAI introduced and others (Cohere v2, Ollama, Mistral)
/// adopted: `{"type": "function", "function": {"name", "description", "parameters"}}`.
pub fn function_tool(spec: &ToolSpec) -> Result<Value, ProviderError> {
    let parameters = json_arg(&spec.parameters, || format!("the parameter schema of tool {}", spec.name))?;
    let mut function = serde_json::json!({ "name": spec.name, "parameters": parameters });
    if let Some(description) = &spec.description {
        function["description"] = Value::from(description.as_str());
    }
    Ok(serde_json::json!({ "type": "function", "function": function }))
}

/// The role as most vendors spell it: `system`, `user`, `assistant` or `tool`.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// A listed model with only what model lists usually say: whether it embeds or takes tools.
pub fn model_info(id: impl Into<String>, supports_embeddings: bool, supports_tools: bool) -> ModelInfo {
    ModelInfo { supports_embeddings, supports_tools, ..ModelInfo::new(id) }
}

/// One event or line of a streamed body parsed as `T`; a malformed one is `other`.
pub fn parse_event<T: DeserializeOwned>(text: &str) -> Result<T, ProviderError> {
    serde_json::from_str(text)
        .map_err(|e| ProviderError::Other(format!("the vendor sent a malformed stream event: {e}")))
}

/// An incremental decoder of a streamed body: the [`sse`] parser or the [`ndjson`] splitter.
pub trait Decoder {
    /// What one complete piece of the stream is.
    type Item;
    /// Consumes the next piece of the body and returns the items it completes.
    fn feed(&mut self, chunk: &[u8]) -> Vec<Self::Item>;
    /// Ends the stream, returning an unterminated last item.
    fn finish(&mut self) -> Option<Self::Item>;
}

impl Decoder for sse::Parser {
    type Item = sse::Event;

    fn feed(&mut self, chunk: &[u8]) -> Vec<sse::Event> {
        sse::Parser::feed(self, chunk)
    }

    fn finish(&mut self) -> Option<sse::Event> {
        sse::Parser::finish(self)
    }
}

impl Decoder for ndjson::Splitter {
    type Item = String;

    fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        ndjson::Splitter::feed(self, chunk)
    }

    fn finish(&mut self) -> Option<String> {
        ndjson::Splitter::finish(self)
    }
}

/// Decodes `chunks` (a [`Response::chunks`](crate::http::Response::chunks)) with `decoder` and
/// hands each item to `on_item`, until it answers [`ControlFlow::Break`] at the vendor's final
/// event; the rest of the body is then left unread.
///
/// A body that ends before that event, or breaks off (a transport error), is `unavailable`:
/// the reply is incomplete. Errors from `on_item` end the stream as they are.
pub fn read_stream<D: Decoder>(
    mut decoder: D,
    chunks: impl IntoIterator<Item = Result<Vec<u8>, HttpError>>,
    mut on_item: impl FnMut(D::Item) -> Result<ControlFlow<()>, ProviderError>,
) -> Result<(), ProviderError> {
    for chunk in chunks {
        for item in decoder.feed(&chunk?) {
            if on_item(item)?.is_break() {
                return Ok(());
            }
        }
    }
    if let Some(item) = decoder.finish()
        && on_item(item)?.is_break()
    {
        return Ok(());
    }
    Err(ProviderError::unavailable("the stream ended before the vendor's final event"))
}

/// Builds a streamed reply: text and tool-call fragments are emitted as they arrive and
/// collected into the [`ChatResponse`] returned by [`Collector::finish`].
pub struct Collector<'a> {
    emit: &'a mut dyn FnMut(&StreamEvent),
    response: ChatResponse,
    /// The vendor's key (block index, call id position...) of each entry of `tool_calls`.
    tool_keys: Vec<u32>,
}

impl<'a> Collector<'a> {
    /// A collector emitting to `emit` (normally `|event| sink.emit(event)`), for a reply from
    /// `model` that ends with `other` unless the vendor says why it stopped.
    pub fn new(emit: &'a mut dyn FnMut(&StreamEvent), model: impl Into<String>) -> Self {
        let response = ChatResponse { finish_reason: FinishReason::Other, ..ChatResponse::text(model, "") };
        Self { emit, response, tool_keys: Vec::new() }
    }

    /// Appends and emits reply text; empty text is ignored.
    pub fn text(&mut self, text: &str) {
        if !text.is_empty() {
            self.response.content.push_str(text);
            (self.emit)(&StreamEvent::Delta(text.to_owned()));
        }
    }

    /// Emits reasoning text as it streams; empty text is ignored. The vendor's plugin keeps the
    /// blocks themselves (with their signatures), since only it knows where a block ends.
    pub fn reasoning(&mut self, text: &str) {
        if !text.is_empty() {
            (self.emit)(&StreamEvent::Reasoning(text.to_owned()));
        }
    }

    /// Appends and emits a tool-call fragment. `key` is whatever identifies the call in the
    /// vendor's stream (e.g. Anthropic's content-block index); calls are numbered from 0 in the
    /// order their keys first appear. The id and name are kept from the first fragment that
    /// has them; arguments concatenate.
    pub fn tool_call(&mut self, key: u32, id: Option<String>, name: Option<String>, arguments: &str) {
        let position = match self.tool_keys.iter().position(|k| *k == key) {
            Some(position) => position,
            None => {
                self.tool_keys.push(key);
                self.response.tool_calls.push(ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                self.tool_keys.len() - 1
            }
        };
        let call = &mut self.response.tool_calls[position];
        if let Some(id) = id.as_ref().filter(|_| call.id.is_empty()) {
            call.id.clone_from(id);
        }
        if let Some(name) = name.as_ref().filter(|_| call.name.is_empty()) {
            call.name.clone_from(name);
        }
        call.arguments.push_str(arguments);
        let index = u32::try_from(position).unwrap_or(u32::MAX);
        (self.emit)(&StreamEvent::ToolCall(ToolCallDelta { index, id, name, arguments: arguments.to_owned() }));
    }

    /// Sets the model that answered, when the vendor names it.
    pub fn model(&mut self, model: impl Into<String>) {
        self.response.model = model.into();
    }

    /// Sets why the model stopped.
    pub fn finish_reason(&mut self, reason: FinishReason) {
        self.response.finish_reason = reason;
    }

    /// Sets or updates the token counts; fields left `None` keep their earlier value.
    pub fn usage(&mut self, prompt_tokens: Option<u32>, completion_tokens: Option<u32>) {
        let usage = self.response.usage.get_or_insert(Usage::new(0, 0));
        usage.prompt_tokens = prompt_tokens.unwrap_or(usage.prompt_tokens);
        usage.completion_tokens = completion_tokens.unwrap_or(usage.completion_tokens);
    }

    /// The text collected so far.
    pub fn content(&self) -> &str {
        &self.response.content
    }

    /// The tool calls collected so far.
    pub fn tool_calls(&self) -> &[ToolCall] {
        &self.response.tool_calls
    }

    /// The complete reply.
    pub fn finish(self) -> ChatResponse {
        self.response
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Floats keep their shortest form, and `extra-json` fields are merged over the body.
    #[test]
    fn body_with_extra_json() {
        #[derive(Serialize)]
        struct Body {
            model: &'static str,
            temperature: f32,
        }
        let body = Body { model: "m", temperature: 0.2 };
        assert_eq!(request_body(&body, None).unwrap().to_string(), r#"{"model":"m","temperature":0.2}"#);
        let merged = request_body(&body, Some(r#"{"model":"n","seed":7}"#)).unwrap();
        assert_eq!(merged, json!({"model": "n", "temperature": 0.2, "seed": 7}));
        assert!(matches!(request_body(&body, Some("[1]")), Err(ProviderError::BadRequest(_))));
        assert!(matches!(request_body(&body, Some("{")), Err(ProviderError::BadRequest(_))));
    }

    /// Tools take the function shape; schemas and arguments that are not JSON are refused.
    #[test]
    fn function_tools_and_json_arguments() {
        let spec = ToolSpec {
            name: "weather".into(),
            description: Some("Now".into()),
            parameters: r#"{"type":"object"}"#.into(),
        };
        assert_eq!(
            function_tool(&spec).unwrap(),
            json!({"type": "function", "function": {"name": "weather", "description": "Now", "parameters": {"type": "object"}}})
        );
        let bad = ToolSpec { description: None, parameters: "{".into(), ..spec };
        let Err(ProviderError::BadRequest(message)) = function_tool(&bad) else { panic!() };
        assert!(message.starts_with("the parameter schema of tool weather is not JSON"), "{message}");
        assert_eq!(json_arg("[1]", String::new).unwrap(), json!([1]));
    }

    fn chunks(pieces: &[&str]) -> Vec<Result<Vec<u8>, HttpError>> {
        pieces.iter().map(|p| Ok(p.as_bytes().to_vec())).collect()
    }

    /// Items reach the handler until it breaks; the rest of the body is never read.
    #[test]
    fn stops_at_the_final_event() {
        let mut seen = Vec::new();
        let body = chunks(&["data: a\n\nda", "ta: end\n\n", "data: ignored\n\n"]);
        let result = read_stream(sse::Parser::new(), body, |event| {
            seen.push(event.data.clone());
            Ok(if event.data == "end" { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        });
        assert_eq!(result, Ok(()));
        assert_eq!(seen, ["a", "end"]);
    }

    /// An unterminated last NDJSON line still counts as the final one.
    #[test]
    fn final_line_without_newline() {
        let result = read_stream(ndjson::Splitter::new(), chunks(&["{\"done\":false}\n{\"done\":true}"]), |line| {
            Ok(if line.contains("true") { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        });
        assert_eq!(result, Ok(()));
    }

    /// A body that ends or breaks off before the final event is `unavailable`; handler errors
    /// pass through.
    #[test]
    fn incomplete_streams() {
        let go_on = |_| Ok(ControlFlow::Continue(()));
        assert!(matches!(
            read_stream(ndjson::Splitter::new(), chunks(&["{}\n"]), go_on),
            Err(ProviderError::Unavailable(_))
        ));
        let broken = vec![Ok(b"{}\n".to_vec()), Err(HttpError::Protocol("reset".into()))];
        assert!(matches!(read_stream(ndjson::Splitter::new(), broken, go_on), Err(ProviderError::Unavailable(_))));
        let refuse = |_| Err(ProviderError::Other("bad".into()));
        assert_eq!(
            read_stream(ndjson::Splitter::new(), chunks(&["x\n"]), refuse),
            Err(ProviderError::Other("bad".into()))
        );
        assert!(matches!(parse_event::<Value>("{nope"), Err(ProviderError::Other(_))));
    }

    /// Reasoning text is emitted as a reasoning event and never joins the reply text.
    #[test]
    fn emits_reasoning() {
        let mut events = Vec::new();
        let mut emit = |event: &StreamEvent| events.push(event.clone());
        let mut collector = Collector::new(&mut emit, "m");
        collector.reasoning("hmm");
        collector.reasoning("");
        collector.text("ok");
        assert_eq!(collector.finish().content, "ok");
        assert_eq!(events, [StreamEvent::Reasoning("hmm".into()), StreamEvent::Delta("ok".into())]);
    }

    /// Text and tool-call fragments are emitted as they come and assembled by key.
    #[test]
    fn collects_and_emits() {
        let mut events = Vec::new();
        let mut emit = |event: &StreamEvent| events.push(event.clone());
        let mut collector = Collector::new(&mut emit, "m");
        collector.text("Hel");
        collector.text("");
        collector.text("lo");
        collector.tool_call(3, Some("call_1".into()), Some("weather".into()), "");
        collector.tool_call(5, Some("call_2".into()), Some("time".into()), "{}");
        collector.tool_call(3, None, None, "{\"city\":");
        collector.tool_call(3, None, None, "\"Oslo\"}");
        collector.usage(Some(10), None);
        collector.usage(None, Some(4));
        collector.model("m-2024");
        collector.finish_reason(FinishReason::ToolCalls);
        assert_eq!(collector.content(), "Hello");
        let response = collector.finish();
        assert_eq!(response.content, "Hello");
        assert_eq!(response.model, "m-2024");
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(response.usage, Some(Usage::new(10, 4)));
        assert_eq!(
            response.tool_calls,
            [
                ToolCall { id: "call_1".into(), name: "weather".into(), arguments: "{\"city\":\"Oslo\"}".into() },
                ToolCall { id: "call_2".into(), name: "time".into(), arguments: "{}".into() },
            ]
        );
        assert_eq!(events.len(), 6);
        assert_eq!(events[0], StreamEvent::Delta("Hel".into()));
        assert_eq!(
            events[4],
            StreamEvent::ToolCall(ToolCallDelta { index: 0, id: None, name: None, arguments: "{\"city\":".into() })
        );
    }
}
