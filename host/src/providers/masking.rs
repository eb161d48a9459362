//! Where plugin results enter the host, the plugin's secret values are masked: in complete
//! replies and in stream events, so no dialect, store or log downstream ever sees one. The
//! matching itself is `capabilities::mask`; this file knows the shapes of replies and events.

use std::sync::Arc;

use crate::capabilities::mask::{MaskStream, Masker};
use crate::runtime::types::{ChatResponse, StreamEvent, ToolCallDelta};

/// `response` with every secret value masked: text, tool calls and the model name.
pub(super) fn response(masker: &Masker, mut response: ChatResponse) -> ChatResponse {
    if masker.is_empty() {
        return response;
    }
    masker.mask_in_place(&mut response.content);
    masker.mask_in_place(&mut response.model);
    // A masked block no longer matches its signature; a secret must not leave all the same.
    for block in &mut response.reasoning {
        masker.mask_in_place(&mut block.text);
    }
    for call in &mut response.tool_calls {
        masker.mask_in_place(&mut call.id);
        masker.mask_in_place(&mut call.name);
        masker.mask_in_place(&mut call.arguments);
    }
    response
}

/// Which part of a streamed reply a piece of text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Text,
    Reasoning,
    /// A tool call's arguments, by the call's index.
    Tool(u32),
}

/// Masks a stream of events. Text deltas and each tool call's argument fragments are masked as
/// one running text each; when the stream moves to another part (or ends), what the previous
/// part held back is flushed first, so the order of parts is kept.
pub(super) struct StreamMask {
    masker: Arc<Masker>,
    current: Option<(Part, MaskStream)>,
}

impl StreamMask {
    pub(super) fn new(masker: Arc<Masker>) -> Self {
        Self { masker, current: None }
    }

    /// The events to pass on for `event` (none, while text is held back).
    pub(super) fn event(&mut self, event: StreamEvent) -> Vec<StreamEvent> {
        if self.masker.is_empty() {
            return vec![event];
        }
        let mut out = Vec::new();
        match event {
            StreamEvent::Delta(text) => {
                let piece = self.push(Part::Text, &text, &mut out);
                if !piece.is_empty() {
                    out.push(StreamEvent::Delta(piece));
                }
            }
            StreamEvent::Reasoning(text) => {
                let piece = self.push(Part::Reasoning, &text, &mut out);
                if !piece.is_empty() {
                    out.push(StreamEvent::Reasoning(piece));
                }
            }
            StreamEvent::ToolCall(delta) => {
                let arguments = self.push(Part::Tool(delta.index), &delta.arguments, &mut out);
                let mask = |v: Option<String>| v.map(|v| self.masker.mask(&v).into_owned());
                let (id, name) = (mask(delta.id), mask(delta.name));
                if id.is_some() || name.is_some() || !arguments.is_empty() {
                    out.push(StreamEvent::ToolCall(ToolCallDelta { index: delta.index, id, name, arguments }));
                }
            }
            other => {
                out.extend(self.flush());
                out.push(other);
            }
        }
        out
    }

    /// What is still held back, once the stream has ended.
    pub(super) fn flush(&mut self) -> Option<StreamEvent> {
        let (part, mut stream) = self.current.take()?;
        let rest = stream.finish();
        if rest.is_empty() {
            return None;
        }
        Some(match part {
            Part::Text => StreamEvent::Delta(rest),
            Part::Reasoning => StreamEvent::Reasoning(rest),
            Part::Tool(index) => StreamEvent::ToolCall(ToolCallDelta { index, id: None, name: None, arguments: rest }),
        })
    }

    /// Adds `text` to `part`'s running text (flushing another part into `out` first); returns
    /// what may go out now.
    fn push(&mut self, part: Part, text: &str, out: &mut Vec<StreamEvent>) -> String {
        if self.current.as_ref().is_none_or(|(p, _)| *p != part) {
            out.extend(self.flush());
            self.current = Some((part, self.masker.stream()));
        }
        let (_, stream) = self.current.as_mut().expect("set above");
        stream.push(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-test-0123456789";

    fn masker() -> Arc<Masker> {
        Arc::new(Masker::new([("OPENAI_API_KEY", KEY)]))
    }

    fn text(events: &[StreamEvent]) -> (String, String) {
        let (mut text, mut args) = (String::new(), String::new());
        for e in events {
            match e {
                StreamEvent::Delta(t) => text.push_str(t),
                StreamEvent::ToolCall(d) => args.push_str(&d.arguments),
                StreamEvent::Usage(_) | StreamEvent::Reasoning(_) => {}
            }
        }
        (text, args)
    }

    /// A key split across deltas, and across tool-call argument fragments, never goes out; the
    /// text before it does, and every held-back byte comes out in the end, in order.
    #[test]
    fn masks_split_values_in_text_and_tool_arguments() {
        let mut mask = StreamMask::new(masker());
        let mut out = Vec::new();
        for event in [
            StreamEvent::Delta("Your key is sk-test-01234".into()),
            StreamEvent::Delta("56789, keep it safe.".into()),
            StreamEvent::ToolCall(ToolCallDelta {
                index: 0,
                id: Some("call_1".into()),
                name: Some("save".into()),
                arguments: "{\"key\":\"sk-te".into(),
            }),
            StreamEvent::ToolCall(ToolCallDelta {
                index: 0,
                id: None,
                name: None,
                arguments: "st-0123456789\"}".into(),
            }),
        ] {
            out.extend(mask.event(event));
        }
        out.extend(mask.flush());
        let (text, args) = text(&out);
        assert_eq!(text, "Your key is [redacted:OPENAI_API_KEY], keep it safe.");
        assert_eq!(args, "{\"key\":\"[redacted:OPENAI_API_KEY]\"}");
        // Text before the key goes out at once.
        assert!(matches!(&out[0], StreamEvent::Delta(t) if t == "Your key is "), "{out:?}");
        // The text's tail is flushed before the tool call starts.
        let first_tool = out.iter().position(|e| matches!(e, StreamEvent::ToolCall(_))).unwrap();
        assert!(out[first_tool..].iter().all(|e| matches!(e, StreamEvent::ToolCall(_))));
    }

    /// A complete reply is masked in text, tool calls and model.
    #[test]
    fn masks_complete_replies() {
        let reply = ChatResponse {
            content: format!("echo {KEY}"),
            tool_calls: vec![crate::runtime::types::ToolCall {
                id: "c".into(),
                name: "n".into(),
                arguments: format!("{{\"k\":\"{KEY}\"}}"),
            }],
            finish_reason: crate::runtime::types::FinishReason::Stop,
            usage: None,
            model: KEY.into(),
            reasoning: Vec::new(),
        };
        let reply = response(&masker(), reply);
        assert!(!format!("{reply:?}").contains(KEY), "{reply:?}");
    }
}
