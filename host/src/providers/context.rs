//! Context windows of well-known models, for fitting prompts when a provider's model list does
//! not say. Matched by prefix, most specific first; unknown models get a conservative default.

/// (model name prefix, context window in tokens).
const KNOWN: &[(&str, usize)] = &[
    ("gpt-3.5-turbo-instruct", 4_096),
    ("gpt-3.5-turbo", 16_385),
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4-32k", 32_768),
    ("gpt-4", 8_192),
    ("gpt-5", 400_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("claude", 200_000),
    ("mistral-large", 128_000),
    ("mistral-small", 32_000),
    ("codestral", 256_000),
    ("command-r", 128_000),
    ("command-a", 256_000),
    ("llama3.1", 128_000),
    ("llama3.2", 128_000),
    ("llama3", 8_192),
    ("qwen2.5", 32_768),
    ("echo", 8_192),
];

/// Assumed for models nobody describes: small enough to be safe with any current model.
pub const DEFAULT_CONTEXT: usize = 8_192;

/// The context window of `model`, if it is a well-known one. Vendor prefixes such as GitHub's
/// `openai/gpt-4o` are ignored.
pub fn known(model: &str) -> Option<usize> {
    let name = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    KNOWN.iter().find(|(prefix, _)| name.starts_with(prefix)).map(|(_, tokens)| *tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most specific prefix wins and vendor prefixes are ignored.
    #[test]
    fn prefixes() {
        assert_eq!(known("gpt-3.5-turbo"), Some(16_385));
        assert_eq!(known("gpt-4o-mini"), Some(128_000));
        assert_eq!(known("gpt-4-0613"), Some(8_192));
        assert_eq!(known("openai/gpt-4o-mini"), Some(128_000));
        assert_eq!(known("claude-3-5-haiku-latest"), Some(200_000));
        assert_eq!(known("my-finetune"), None);
    }
}
