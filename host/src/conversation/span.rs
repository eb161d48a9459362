//! The span of one turn, with the GenAI semantic conventions' attributes (exported when
//! telemetry is on). Message contents are recorded only when the operator opts in with
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.

use serde_json::json;
use tracing::Span;
use tracing::field::Empty;

use super::{Error, Outcome, TurnRequest};
use crate::plugins::Plugin;
use crate::runtime::types;

/// A turn's span, before routing has named its provider and model (and so the span).
pub fn turn(request: &TurnRequest) -> Span {
    let options = &request.options;
    tracing::info_span!(
        "turn",
        otel.status_code = Empty,
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = Empty,
        gen_ai.request.model = Empty,
        gen_ai.request.temperature = options.temperature,
        gen_ai.request.top_p = options.top_p,
        gen_ai.request.max_tokens = options.max_tokens.map(i64::from),
        gen_ai.conversation.id = Empty,
        gen_ai.response.model = Empty,
        gen_ai.response.finish_reasons = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.input.messages = Empty,
        gen_ai.output.messages = Empty,
        codexcontinue.memory.recalled = Empty,
        codexcontinue.memory.summary = Empty,
        error.type = Empty,
    )
}

/// Names the provider and model the turn goes to, and the session it belongs to.
pub fn routed(span: &Span, plugin: &Plugin, model: &str, session: Option<&str>) {
    crate::telemetry::rename(span, format!("chat {model}"));
    span.record("gen_ai.provider.name", crate::telemetry::gen_ai_provider(&plugin.manifest.id));
    span.record("gen_ai.request.model", model);
    if let Some(session) = session {
        span.record("gen_ai.conversation.id", session);
    }
}

/// The prompt as sent, when contents are captured.
pub fn prompt(span: &Span, messages: &[types::Message], capture: bool) {
    if capture {
        let messages: Vec<_> =
            messages.iter().map(|m| json!({ "role": role(m.role), "content": m.plain_text() })).collect();
        span.record("gen_ai.input.messages", json!(messages).to_string());
    }
}

pub fn finished(span: &Span, outcome: &Outcome, capture: bool) {
    let reply = &outcome.reply;
    span.record("gen_ai.response.model", reply.model.as_str());
    span.record("gen_ai.response.finish_reasons", reply.finish_reason);
    span.record("gen_ai.usage.input_tokens", i64::from(reply.usage.prompt_tokens));
    span.record("gen_ai.usage.output_tokens", i64::from(reply.usage.completion_tokens));
    span.record("codexcontinue.memory.recalled", outcome.memory.recalled as i64);
    span.record("codexcontinue.memory.summary", outcome.memory.summary);
    if capture {
        let message = json!({ "role": "assistant", "content": reply.content, "finish_reason": reply.finish_reason });
        span.record("gen_ai.output.messages", json!([message]).to_string());
    }
}

pub fn failed(span: &Span, error: &Error) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error.kind());
}

fn role(role: types::Role) -> &'static str {
    match role {
        types::Role::System => "system",
        types::Role::User => "user",
        types::Role::Assistant => "assistant",
        types::Role::Tool => "tool",
    }
}
