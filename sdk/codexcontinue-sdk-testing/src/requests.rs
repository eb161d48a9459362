//! Constructors for the host's WIT records, spelled as the guest SDK spells them
//! (`ChatRequest::new`, `Message::user`), so a plugin's tests read the same on both sides.
//! The records belong to the host crate, so the constructors are extension traits: bring them
//! in with `use codexcontinue_sdk_testing::prelude::*`.

use crate::types::{ChatRequest, EmbedRequest, Message, Role, StreamEvent};

/// Constructors for [`Message`].
pub trait MessageExt {
    /// A plain text message from `role`.
    fn new(role: Role, content: impl Into<String>) -> Self;
    /// A user message.
    fn user(content: impl Into<String>) -> Self;
    /// An assistant message.
    fn assistant(content: impl Into<String>) -> Self;
    /// A system message.
    fn system(content: impl Into<String>) -> Self;
}

impl MessageExt for Message {
    fn new(role: Role, content: impl Into<String>) -> Self {
        Message::text(role, &content.into())
    }

    fn user(content: impl Into<String>) -> Self {
        <Self as MessageExt>::new(Role::User, content)
    }

    fn assistant(content: impl Into<String>) -> Self {
        <Self as MessageExt>::new(Role::Assistant, content)
    }

    fn system(content: impl Into<String>) -> Self {
        <Self as MessageExt>::new(Role::System, content)
    }
}

/// Constructors for [`ChatRequest`]; set other options with struct update syntax:
/// `ChatRequest { temperature: Some(0.2), ..ChatRequest::new("m", messages) }`.
pub trait ChatRequestExt {
    /// A request for `model` with `messages` and no other options.
    fn new(model: impl Into<String>, messages: Vec<Message>) -> Self;
    /// A request for `model` with one user message, `content`.
    fn user(model: impl Into<String>, content: impl Into<String>) -> Self;
}

impl ChatRequestExt for ChatRequest {
    fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            messages,
            temperature: None,
            top_p: None,
            max_tokens: None,
            stop: Vec::new(),
            tools: Vec::new(),
            tool_choice: None,
            extra_json: None,
        }
    }

    fn user(model: impl Into<String>, content: impl Into<String>) -> Self {
        <Self as ChatRequestExt>::new(model, vec![Message::user(content)])
    }
}

/// Constructors for [`EmbedRequest`].
pub trait EmbedRequestExt {
    /// Embeddings of `inputs` with the provider's embedding model.
    fn new<S: Into<String>>(inputs: impl IntoIterator<Item = S>) -> Self;
}

impl EmbedRequestExt for EmbedRequest {
    fn new<S: Into<String>>(inputs: impl IntoIterator<Item = S>) -> Self {
        Self { model: None, inputs: inputs.into_iter().map(Into::into).collect(), input_type: None, dimensions: None }
    }
}

/// The text of each `delta` event of a stream, in order (usage and tool-call events skipped).
pub fn stream_deltas(events: &[StreamEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Delta(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// The reply text of a stream: its `delta` events, concatenated.
pub fn stream_text(events: &[StreamEvent]) -> String {
    stream_deltas(events).concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each constructor sets what it names and leaves every optional field empty.
    #[test]
    fn constructors_set_only_what_they_name() {
        let messages = [Message::system("s"), Message::user("u"), Message::assistant("a")];
        let shapes = messages.map(|m| (m.role, m.plain_text(), m.name.is_none() && m.tool_calls.is_empty()));
        assert_eq!(
            shapes,
            [
                (Role::System, "s".to_string(), true),
                (Role::User, "u".into(), true),
                (Role::Assistant, "a".into(), true)
            ]
        );
        let request = ChatRequest::user("m", "hi");
        let unset = request.temperature.is_none() && request.tools.is_empty() && request.tool_choice.is_none();
        assert!(unset && request.model == "m" && request.messages[0].plain_text() == "hi");
        let embed = EmbedRequest::new(["a", "b"]);
        assert!(embed.model.is_none() && embed.inputs == ["a", "b"]);
    }

    /// Only deltas make up the text; usage and tool-call events are skipped.
    #[test]
    fn stream_text_joins_deltas() {
        use crate::types::Usage;
        let events =
            [StreamEvent::Delta("Hel".into()), StreamEvent::Usage(Usage::new(1, 2)), StreamEvent::Delta("lo".into())];
        assert_eq!(stream_deltas(&events), ["Hel", "lo"]);
        assert_eq!(stream_text(&events), "Hello");
    }
}
