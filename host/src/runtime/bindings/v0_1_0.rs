//! `codexcontinue:plugin@0.1.0` (`wit/v0.1.0`), loaded through an adapter to `latest`.
//!
//! Interfaces that did not change (`log`, `config`, `http-client`, `redis`, `postgres`) are
//! latest's own, linked under their 0.1.0 names; `types`, `streaming` and the exports are
//! generated here, and every shape converts into latest's with the `From` impls below, so no host
//! logic lives in this file. What v0.1 cannot express (images, reasoning, embedding options) is
//! dropped on the way in; what it lacks on the way out (cache usage, retry-after on `unavailable`)
//! is left empty.

use wasmtime::component::{HasSelf, Linker, LinkerInstance, Resource};

use super::latest;
use crate::runtime::state::HostState;
use crate::runtime::stream::Sink;

/// The `provider-plugin` world.
pub mod provider {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "provider-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "codexcontinue:plugin/log": crate::runtime::bindings::latest::provider::codexcontinue::plugin::log,
            "codexcontinue:plugin/config": crate::runtime::bindings::latest::provider::codexcontinue::plugin::config,
            "codexcontinue:plugin/http-client": crate::runtime::bindings::latest::provider::codexcontinue::plugin::http_client,
            "codexcontinue:plugin/streaming.sink": crate::runtime::stream::Sink,
        },
    });
}

/// The `memory-plugin` world.
pub mod memory {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "memory-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [PartialEq],
        with: {
            "codexcontinue:plugin/types": super::provider::codexcontinue::plugin::types,
            "codexcontinue:plugin/log": crate::runtime::bindings::latest::provider::codexcontinue::plugin::log,
            "codexcontinue:plugin/config": crate::runtime::bindings::latest::provider::codexcontinue::plugin::config,
            "codexcontinue:plugin/redis": crate::runtime::bindings::latest::memory::codexcontinue::plugin::redis,
            "codexcontinue:plugin/postgres": crate::runtime::bindings::latest::memory::codexcontinue::plugin::postgres,
        },
    });
}

use latest::memory::codexcontinue::plugin as new_db;
use latest::memory::exports::codexcontinue::plugin::memory_store as new_store;
use latest::provider::codexcontinue::plugin as new_host;
use latest::provider::codexcontinue::plugin::types as new;
use memory::exports::codexcontinue::plugin::memory_store as old_store;
use provider::codexcontinue::plugin::types as old;

/// The instance of an unchanged interface under its 0.1.0 name. Latest's generated
/// `add_to_linker` would register the 0.2.0 name, which a 0.1.0 component does not import.
fn instance<'a>(linker: &'a mut Linker<HostState>, interface: &str) -> wasmtime::Result<LinkerInstance<'a, HostState>> {
    linker.instance(&format!("codexcontinue:plugin/{interface}@0.1.0"))
}

/// Adds every import of the 0.1.0 provider world to `linker`.
pub(crate) fn link_provider(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    new_host::log::add_to_linker_instance::<_, HasSelf<_>>(&mut instance(linker, "log")?, |s| s)?;
    new_host::config::add_to_linker_instance::<_, HasSelf<_>>(&mut instance(linker, "config")?, |s| s)?;
    new_host::http_client::add_to_linker_instance::<_, HasSelf<_>>(&mut instance(linker, "http-client")?, |s| s)?;
    provider::codexcontinue::plugin::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    provider::codexcontinue::plugin::streaming::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

/// Adds every import of the 0.1.0 memory world to `linker`.
pub(crate) fn link_memory(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    new_host::log::add_to_linker_instance::<_, HasSelf<_>>(&mut instance(linker, "log")?, |s| s)?;
    new_host::config::add_to_linker_instance::<_, HasSelf<_>>(&mut instance(linker, "config")?, |s| s)?;
    new_db::redis::add_to_linker_instance::<_, HasSelf<_>>(&mut instance(linker, "redis")?, |s| s)?;
    new_db::postgres::add_to_linker_instance::<_, HasSelf<_>>(&mut instance(linker, "postgres")?, |s| s)?;
    provider::codexcontinue::plugin::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

impl old::Host for HostState {}

impl provider::codexcontinue::plugin::streaming::Host for HostState {}

impl provider::codexcontinue::plugin::streaming::HostSink for HostState {
    async fn emit(&mut self, sink: Resource<Sink>, event: old::StreamEvent) -> wasmtime::Result<()> {
        new_host::streaming::HostSink::emit(self, sink, event.into()).await
    }

    async fn drop(&mut self, sink: Resource<Sink>) -> wasmtime::Result<()> {
        new_host::streaming::HostSink::drop(self, sink).await
    }
}

// ---- latest → 0.1.0: what the host passes in ----

impl From<&new::Role> for old::Role {
    fn from(role: &new::Role) -> Self {
        match role {
            new::Role::System => old::Role::System,
            new::Role::User => old::Role::User,
            new::Role::Assistant => old::Role::Assistant,
            new::Role::Tool => old::Role::Tool,
        }
    }
}

impl From<&new::ToolCall> for old::ToolCall {
    fn from(call: &new::ToolCall) -> Self {
        old::ToolCall { id: call.id.clone(), name: call.name.clone(), arguments: call.arguments.clone() }
    }
}

/// A message's text parts joined; images and reasoning have no 0.1.0 shape and are dropped.
impl From<&new::Message> for old::Message {
    fn from(message: &new::Message) -> Self {
        old::Message {
            role: (&message.role).into(),
            content: message.plain_text(),
            name: message.name.clone(),
            tool_calls: message.tool_calls.iter().map(Into::into).collect(),
            tool_call_id: message.tool_call_id.clone(),
        }
    }
}

impl From<&new::ChatRequest> for old::ChatRequest {
    fn from(request: &new::ChatRequest) -> Self {
        old::ChatRequest {
            model: request.model.clone(),
            messages: request.messages.iter().map(Into::into).collect(),
            temperature: request.temperature,
            top_p: request.top_p,
            max_tokens: request.max_tokens,
            stop: request.stop.clone(),
            tools: request
                .tools
                .iter()
                .map(|tool| old::ToolSpec {
                    name: tool.name.clone(),
                    description: tool.description.clone(),
                    parameters: tool.parameters.clone(),
                })
                .collect(),
            tool_choice: request.tool_choice.clone(),
            extra_json: request.extra_json.clone(),
        }
    }
}

/// `input-type` and `dimensions` have no 0.1.0 shape: the plugin uses its defaults.
impl From<&new::EmbedRequest> for old::EmbedRequest {
    fn from(request: &new::EmbedRequest) -> Self {
        old::EmbedRequest { model: request.model.clone(), inputs: request.inputs.clone() }
    }
}

// ---- 0.1.0 → latest: what the plugin answers ----

impl From<old::ToolCall> for new::ToolCall {
    fn from(call: old::ToolCall) -> Self {
        new::ToolCall { id: call.id, name: call.name, arguments: call.arguments }
    }
}

impl From<old::FinishReason> for new::FinishReason {
    fn from(reason: old::FinishReason) -> Self {
        match reason {
            old::FinishReason::Stop => new::FinishReason::Stop,
            old::FinishReason::Length => new::FinishReason::Length,
            old::FinishReason::ToolCalls => new::FinishReason::ToolCalls,
            old::FinishReason::ContentFilter => new::FinishReason::ContentFilter,
            old::FinishReason::Other => new::FinishReason::Other,
        }
    }
}

impl From<old::Usage> for new::Usage {
    fn from(usage: old::Usage) -> Self {
        new::Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_read_tokens: 0,
            cached_write_tokens: 0,
            reasoning_tokens: 0,
        }
    }
}

impl From<old::ChatResponse> for new::ChatResponse {
    fn from(response: old::ChatResponse) -> Self {
        new::ChatResponse {
            content: response.content,
            reasoning: Vec::new(),
            tool_calls: response.tool_calls.into_iter().map(Into::into).collect(),
            finish_reason: response.finish_reason.into(),
            usage: response.usage.map(Into::into),
            model: response.model,
        }
    }
}

impl From<old::ToolCallDelta> for new::ToolCallDelta {
    fn from(delta: old::ToolCallDelta) -> Self {
        new::ToolCallDelta { index: delta.index, id: delta.id, name: delta.name, arguments: delta.arguments }
    }
}

impl From<old::StreamEvent> for new::StreamEvent {
    fn from(event: old::StreamEvent) -> Self {
        match event {
            old::StreamEvent::Delta(text) => new::StreamEvent::Delta(text),
            old::StreamEvent::ToolCall(delta) => new::StreamEvent::ToolCall(delta.into()),
            old::StreamEvent::Usage(usage) => new::StreamEvent::Usage(usage.into()),
        }
    }
}

/// 0.1.0 had no vision or reasoning flags: a v0.1 plugin cannot be sent images or reasoning.
impl From<old::ModelInfo> for new::ModelInfo {
    fn from(model: old::ModelInfo) -> Self {
        new::ModelInfo {
            id: model.id,
            context_window: model.context_window,
            max_output_tokens: model.max_output_tokens,
            supports_embeddings: model.supports_embeddings,
            supports_tools: model.supports_tools,
            supports_vision: false,
            supports_reasoning: false,
        }
    }
}

impl From<old::ProviderInfo> for new::ProviderInfo {
    fn from(info: old::ProviderInfo) -> Self {
        new::ProviderInfo { name: info.name, default_model: info.default_model, embedding_model: info.embedding_model }
    }
}

impl From<old::Embeddings> for new::Embeddings {
    fn from(embeddings: old::Embeddings) -> Self {
        new::Embeddings {
            model: embeddings.model,
            vectors: embeddings.vectors,
            usage: embeddings.usage.map(Into::into),
        }
    }
}

impl From<old::RateLimit> for new::RateLimit {
    fn from(limit: old::RateLimit) -> Self {
        new::RateLimit { retry_after_ms: limit.retry_after_ms, message: limit.message }
    }
}

/// 0.1.0's `unavailable` carried no retry-after; the host's own backoff applies.
impl From<old::ProviderError> for new::ProviderError {
    fn from(error: old::ProviderError) -> Self {
        match error {
            old::ProviderError::Unauthorized(m) => new::ProviderError::Unauthorized(m),
            old::ProviderError::RateLimited(limit) => new::ProviderError::RateLimited(limit.into()),
            old::ProviderError::BadRequest(m) => new::ProviderError::BadRequest(m),
            old::ProviderError::NotFound(m) => new::ProviderError::NotFound(m),
            old::ProviderError::Unavailable(m) => {
                new::ProviderError::Unavailable(new::RateLimit { retry_after_ms: None, message: m })
            }
            old::ProviderError::Timeout(m) => new::ProviderError::Timeout(m),
            old::ProviderError::Unsupported(m) => new::ProviderError::Unsupported(m),
            old::ProviderError::Other(m) => new::ProviderError::Other(m),
        }
    }
}

// ---- memory-store: same shapes in both versions, distinct generated types ----

impl From<new::Role> for old::Role {
    fn from(role: new::Role) -> Self {
        (&role).into()
    }
}

impl From<old::Role> for new::Role {
    fn from(role: old::Role) -> Self {
        match role {
            old::Role::System => new::Role::System,
            old::Role::User => new::Role::User,
            old::Role::Assistant => new::Role::Assistant,
            old::Role::Tool => new::Role::Tool,
        }
    }
}

impl From<&new_store::Scope> for old_store::Scope {
    fn from(scope: &new_store::Scope) -> Self {
        old_store::Scope { user: scope.user.clone(), session: scope.session.clone() }
    }
}

impl From<&new_store::NewMessage> for old_store::NewMessage {
    fn from(message: &new_store::NewMessage) -> Self {
        old_store::NewMessage {
            role: message.role.into(),
            content: message.content.clone(),
            name: message.name.clone(),
            metadata: message.metadata.clone(),
            created_at_ms: message.created_at_ms,
        }
    }
}

impl From<&new_store::Summary> for old_store::Summary {
    fn from(summary: &new_store::Summary) -> Self {
        old_store::Summary {
            text: summary.text.clone(),
            through_seq: summary.through_seq,
            updated_at_ms: summary.updated_at_ms,
        }
    }
}

impl From<old_store::Summary> for new_store::Summary {
    fn from(summary: old_store::Summary) -> Self {
        new_store::Summary {
            text: summary.text,
            through_seq: summary.through_seq,
            updated_at_ms: summary.updated_at_ms,
        }
    }
}

impl From<&new_store::Embedding> for old_store::Embedding {
    fn from(embedding: &new_store::Embedding) -> Self {
        old_store::Embedding { seq: embedding.seq, model: embedding.model.clone(), vector: embedding.vector.clone() }
    }
}

impl From<old_store::Embedding> for new_store::Embedding {
    fn from(embedding: old_store::Embedding) -> Self {
        new_store::Embedding { seq: embedding.seq, model: embedding.model, vector: embedding.vector }
    }
}

impl From<old_store::StoredMessage> for new_store::StoredMessage {
    fn from(message: old_store::StoredMessage) -> Self {
        new_store::StoredMessage {
            seq: message.seq,
            role: message.role.into(),
            content: message.content,
            name: message.name,
            metadata: message.metadata,
            created_at_ms: message.created_at_ms,
        }
    }
}

impl From<old_store::SessionInfo> for new_store::SessionInfo {
    fn from(info: old_store::SessionInfo) -> Self {
        new_store::SessionInfo {
            id: info.id,
            user: info.user,
            title: info.title,
            created_at_ms: info.created_at_ms,
            updated_at_ms: info.updated_at_ms,
            message_count: info.message_count,
        }
    }
}

impl From<old_store::StoreError> for new_store::StoreError {
    fn from(error: old_store::StoreError) -> Self {
        match error {
            old_store::StoreError::Unavailable(m) => new_store::StoreError::Unavailable(m),
            old_store::StoreError::Conflict(m) => new_store::StoreError::Conflict(m),
            old_store::StoreError::Invalid(m) => new_store::StoreError::Invalid(m),
            old_store::StoreError::Other(m) => new_store::StoreError::Other(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest_request() -> new::ChatRequest {
        let mut user = new::Message::text(new::Role::User, "look at ");
        user.content.push(new::ContentPart::Image(new::Image::Url("https://example.com/cat.png".into())));
        user.content.push(new::ContentPart::Text("this".into()));
        let mut assistant = new::Message::text(new::Role::Assistant, "");
        assistant.reasoning.push(new::ReasoningBlock {
            text: "hmm".into(),
            signature: Some("sig".into()),
            encrypted_content: None,
            id: None,
        });
        assistant.tool_calls.push(new::ToolCall { id: "c1".into(), name: "f".into(), arguments: "{}".into() });
        let mut tool = new::Message::text(new::Role::Tool, "42");
        tool.tool_call_id = Some("c1".into());
        new::ChatRequest {
            model: "m".into(),
            messages: vec![user, assistant, tool],
            temperature: Some(0.5),
            top_p: None,
            max_tokens: Some(7),
            stop: vec!["END".into()],
            tools: vec![new::ToolSpec { name: "f".into(), description: None, parameters: "{}".into() }],
            tool_choice: Some("auto".into()),
            extra_json: Some("{\"seed\":1}".into()),
        }
    }

    /// A latest request reaches a 0.1.0 plugin with its text parts joined, images and
    /// reasoning dropped, and every other field unchanged.
    #[test]
    fn chat_request_converts_down() {
        let old = old::ChatRequest::from(&latest_request());
        assert_eq!(old.messages.len(), 3);
        assert_eq!(old.messages[0].content, "look at this");
        assert_eq!(old.messages[0].role, old::Role::User);
        let call = &old.messages[1].tool_calls[0];
        assert_eq!((call.id.as_str(), call.name.as_str(), call.arguments.as_str()), ("c1", "f", "{}"));
        assert_eq!((old.messages[2].role, old.messages[2].tool_call_id.as_deref()), (old::Role::Tool, Some("c1")));
        assert_eq!((old.model.as_str(), old.temperature, old.max_tokens), ("m", Some(0.5), Some(7)));
        assert_eq!(old.stop, vec!["END".to_string()]);
        assert_eq!(old.tools[0].name, "f");
        assert_eq!(old.tool_choice.as_deref(), Some("auto"));
        assert_eq!(old.extra_json.as_deref(), Some("{\"seed\":1}"));
    }

    /// Embedding options 0.1.0 cannot express are dropped; model and inputs pass.
    #[test]
    fn embed_request_converts_down() {
        let request = new::EmbedRequest {
            model: Some("e".into()),
            inputs: vec!["a".into(), "b".into()],
            input_type: Some(new::InputType::Query),
            dimensions: Some(256),
        };
        let old = old::EmbedRequest::from(&request);
        assert_eq!((old.model.as_deref(), old.inputs), (Some("e"), vec!["a".to_string(), "b".to_string()]));
    }

    /// A 0.1.0 reply gains empty reasoning and zero usage details; the rest is kept.
    #[test]
    fn chat_response_converts_up() {
        let reply = new::ChatResponse::from(old::ChatResponse {
            content: "hi".into(),
            tool_calls: vec![old::ToolCall { id: "c".into(), name: "n".into(), arguments: "{}".into() }],
            finish_reason: old::FinishReason::ContentFilter,
            usage: Some(old::Usage { prompt_tokens: 3, completion_tokens: 4 }),
            model: "m".into(),
        });
        assert_eq!(reply.content, "hi");
        assert!(reply.reasoning.is_empty());
        assert_eq!(reply.tool_calls[0].name, "n");
        assert!(matches!(reply.finish_reason, new::FinishReason::ContentFilter));
        let usage = reply.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 4));
        assert_eq!((usage.cached_read_tokens, usage.cached_write_tokens, usage.reasoning_tokens), (0, 0, 0));
        assert_eq!(reply.model, "m");
    }

    /// Every 0.1.0 finish reason keeps its meaning.
    #[test]
    fn finish_reasons_convert_up() {
        use new::FinishReason as N;
        use old::FinishReason as O;
        for (old, new) in [
            (O::Stop, N::Stop),
            (O::Length, N::Length),
            (O::ToolCalls, N::ToolCalls),
            (O::ContentFilter, N::ContentFilter),
            (O::Other, N::Other),
        ] {
            assert_eq!(N::from(old), new);
        }
    }

    /// Stream events keep their payloads.
    #[test]
    fn stream_events_convert_up() {
        assert!(
            matches!(new::StreamEvent::from(old::StreamEvent::Delta("d".into())), new::StreamEvent::Delta(d) if d == "d")
        );
        let call = old::ToolCallDelta { index: 2, id: Some("i".into()), name: None, arguments: "{".into() };
        match new::StreamEvent::from(old::StreamEvent::ToolCall(call)) {
            new::StreamEvent::ToolCall(d) => {
                assert_eq!((d.index, d.id.as_deref(), d.name, d.arguments.as_str()), (2, Some("i"), None, "{"))
            }
            other => panic!("{other:?}"),
        }
        match new::StreamEvent::from(old::StreamEvent::Usage(old::Usage { prompt_tokens: 1, completion_tokens: 2 })) {
            new::StreamEvent::Usage(u) => {
                assert_eq!((u.prompt_tokens, u.completion_tokens, u.reasoning_tokens), (1, 2, 0))
            }
            other => panic!("{other:?}"),
        }
    }

    /// Every 0.1.0 error keeps its case and message; `unavailable` gains an empty retry-after.
    #[test]
    fn provider_errors_convert_up() {
        let limit = |ms| old::RateLimit { retry_after_ms: ms, message: "slow".into() };
        assert!(matches!(
            new::ProviderError::from(old::ProviderError::RateLimited(limit(Some(1500)))),
            new::ProviderError::RateLimited(new::RateLimit { retry_after_ms: Some(1500), message }) if message == "slow"
        ));
        assert!(matches!(
            new::ProviderError::from(old::ProviderError::Unavailable("down".into())),
            new::ProviderError::Unavailable(new::RateLimit { retry_after_ms: None, message }) if message == "down"
        ));
        let same = [
            (old::ProviderError::Unauthorized("x".into()), "Unauthorized"),
            (old::ProviderError::BadRequest("x".into()), "BadRequest"),
            (old::ProviderError::NotFound("x".into()), "NotFound"),
            (old::ProviderError::Timeout("x".into()), "Timeout"),
            (old::ProviderError::Unsupported("x".into()), "Unsupported"),
            (old::ProviderError::Other("x".into()), "Other"),
        ];
        for (old, case) in same {
            let new = format!("{:?}", new::ProviderError::from(old));
            assert_eq!(new, format!("ProviderError::{case}(\"x\")"));
        }
    }

    /// Model info gains vision and reasoning flags, both false: a 0.1.0 plugin takes neither.
    #[test]
    fn model_info_converts_up() {
        let info = new::ModelInfo::from(old::ModelInfo {
            id: "m".into(),
            context_window: Some(8),
            max_output_tokens: Some(4),
            supports_embeddings: true,
            supports_tools: true,
        });
        assert_eq!((info.id.as_str(), info.context_window, info.max_output_tokens), ("m", Some(8), Some(4)));
        assert!(info.supports_embeddings && info.supports_tools);
        assert!(!info.supports_vision && !info.supports_reasoning);
    }

    /// Memory rows round-trip between the versions unchanged.
    #[test]
    fn memory_types_round_trip() {
        let scope = new_store::Scope { user: "u".into(), session: "s".into() };
        let old_scope = old_store::Scope::from(&scope);
        assert_eq!((old_scope.user.as_str(), old_scope.session.as_str()), ("u", "s"));
        let message = new_store::NewMessage {
            role: new::Role::Assistant,
            content: "c".into(),
            name: Some("n".into()),
            metadata: Some("{}".into()),
            created_at_ms: 9,
        };
        let old_message = old_store::NewMessage::from(&message);
        assert_eq!(old_message.role, old::Role::Assistant);
        let stored = new_store::StoredMessage::from(old_store::StoredMessage {
            seq: 1,
            role: old_message.role,
            content: old_message.content,
            name: old_message.name,
            metadata: old_message.metadata,
            created_at_ms: old_message.created_at_ms,
        });
        assert_eq!(
            stored,
            new_store::StoredMessage {
                seq: 1,
                role: new::Role::Assistant,
                content: "c".into(),
                name: Some("n".into()),
                metadata: Some("{}".into()),
                created_at_ms: 9
            }
        );
        let summary = new_store::Summary { text: "t".into(), through_seq: 3, updated_at_ms: 4 };
        assert_eq!(new_store::Summary::from(old_store::Summary::from(&summary)), summary);
        let embedding = new_store::Embedding { seq: 1, model: "e".into(), vector: vec![0.5] };
        assert_eq!(new_store::Embedding::from(old_store::Embedding::from(&embedding)), embedding);
        assert_eq!(
            new_store::StoreError::from(old_store::StoreError::Conflict("c".into())),
            new_store::StoreError::Conflict("c".into())
        );
    }
}
