//! The latest WIT types, used by the rest of the host, with a few constructors and readers so
//! callers that only deal in text need not spell out content parts and empty fields.

pub use super::bindings::latest::provider::codexcontinue::plugin::types::*;

impl Message {
    /// A message holding one text part and nothing else.
    pub fn text(role: Role, text: &str) -> Self {
        Message {
            role,
            content: vec![ContentPart::Text(text.to_string())],
            reasoning: Vec::new(),
            name: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// The text parts joined in order; images are skipped.
    pub fn plain_text(&self) -> String {
        self.content
            .iter()
            .filter_map(|part| match part {
                ContentPart::Text(text) => Some(text.as_str()),
                ContentPart::Image(_) => None,
            })
            .collect()
    }
}

impl Usage {
    /// Prompt and completion counts with no cache or reasoning detail.
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Usage { prompt_tokens, completion_tokens, cached_read_tokens: 0, cached_write_tokens: 0, reasoning_tokens: 0 }
    }
}

impl ProviderError {
    /// How long the vendor asked us to wait, for the transient cases that carry it.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            ProviderError::RateLimited(limit)
            | ProviderError::Unavailable(limit)
            | ProviderError::Overloaded(limit) => limit.retry_after_ms,
            _ => None,
        }
    }
}
