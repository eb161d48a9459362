//! Reasoning blocks across turns and streams: how a reply's blocks are kept in its stored
//! metadata and given back only to the provider that made them (a signature or encrypted
//! content means nothing to another vendor, and must not leak to one), and the stream order
//! that dialects which close a reasoning block with its signature need.

use futures::{Stream, StreamExt};
use serde_json::{Map, Value, json};

use super::Event;
use crate::runtime::types::{ReasoningBlock, StreamEvent};

/// The metadata key under which a reply's reasoning blocks are stored; the provider that made
/// them is the reply's `provider` beside it.
const KEY: &str = "reasoning";

/// Adds `blocks` to a stored reply's `metadata` (nothing when there are none).
pub fn store(metadata: &mut Value, blocks: &[ReasoningBlock]) {
    if blocks.is_empty() {
        return;
    }
    let blocks: Vec<Value> = blocks
        .iter()
        .map(|b| {
            let mut out = Map::new();
            out.insert("text".into(), json!(b.text));
            let optional = [("signature", &b.signature), ("encrypted_content", &b.encrypted_content), ("id", &b.id)];
            for (key, value) in optional {
                if let Some(value) = value {
                    out.insert(key.into(), json!(value));
                }
            }
            Value::Object(out)
        })
        .collect();
    metadata[KEY] = Value::Array(blocks);
}

/// The reasoning blocks stored in `metadata`, when the reply came from `provider` (as replies
/// label it); none otherwise.
pub fn restore(metadata: Option<&Value>, provider: &str) -> Vec<ReasoningBlock> {
    let Some(metadata) = metadata.filter(|m| m["provider"].as_str() == Some(provider)) else {
        return Vec::new();
    };
    let text = |b: &Value, key: &str| b[key].as_str().map(str::to_string);
    metadata[KEY]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .map(|b| ReasoningBlock {
                    text: text(b, "text").unwrap_or_default(),
                    signature: text(b, "signature"),
                    encrypted_content: text(b, "encrypted_content"),
                    id: text(b, "id"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reorders a turn's events for dialects that finish a reasoning block with its signature or
/// encrypted content before the next block starts (Anthropic Messages, OpenAI Responses). The
/// provider streams reasoning text, but the complete blocks come only with the reply; so once
/// reasoning has streamed, text and tool calls are held until the reply, then follow one
/// [`Event::Reasoned`]. Without streamed reasoning nothing is held, and `Reasoned` comes
/// first only when nothing else went out before the reply. Reasoning is streamed as it comes.
pub fn first(events: impl Stream<Item = Event>) -> impl Stream<Item = Event> {
    // Reasoning has streamed, so everything else is held; something else went out first.
    let (mut reasoned, mut started) = (false, false);
    let mut held = Vec::new();
    events.flat_map(move |event| {
        let out = match event {
            Event::Stream(StreamEvent::Reasoning(text)) if !started => {
                reasoned = true;
                vec![Event::Stream(StreamEvent::Reasoning(text))]
            }
            Event::Stream(event) if reasoned => {
                held.push(Event::Stream(event));
                Vec::new()
            }
            Event::Stream(event) => {
                started = true;
                vec![Event::Stream(event)]
            }
            Event::Done(outcome) => {
                let blocks = &outcome.reply.reasoning;
                let mut out = Vec::with_capacity(held.len() + 2);
                if reasoned || (!started && !blocks.is_empty()) {
                    out.push(Event::Reasoned(blocks.clone()));
                }
                out.append(&mut held);
                out.push(Event::Done(outcome));
                out
            }
            Event::Reasoned(blocks) => vec![Event::Reasoned(blocks)],
            Event::Failed(error) => {
                let mut out = std::mem::take(&mut held);
                out.push(Event::Failed(error));
                out
            }
        };
        futures::stream::iter(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str, signature: Option<&str>, encrypted: Option<&str>) -> ReasoningBlock {
        ReasoningBlock {
            text: text.into(),
            signature: signature.map(str::to_string),
            encrypted_content: encrypted.map(str::to_string),
            id: None,
        }
    }

    /// Stored blocks come back unchanged for their own provider, and not at all for another.
    #[test]
    fn blocks_come_back_only_to_their_provider() {
        let blocks = vec![block("hmm", Some("sig"), None), block("", None, Some("enc"))];
        let mut metadata = json!({ "provider": "anthropic" });
        store(&mut metadata, &blocks);
        assert_eq!(format!("{:?}", restore(Some(&metadata), "anthropic")), format!("{blocks:?}"));
        assert!(restore(Some(&metadata), "openai").is_empty());
        assert!(restore(None, "anthropic").is_empty());
        let mut plain = json!({ "provider": "anthropic" });
        store(&mut plain, &[]);
        assert_eq!(plain, json!({ "provider": "anthropic" }), "no reasoning, no key");
    }
}
