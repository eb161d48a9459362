//! Token counting with a real BPE tokenizer, for usage when a vendor omits it and for fitting
//! prompts to a budget.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

/// Tokens OpenAI's chat format adds per message (role and separators), per its cookbook.
const PER_MESSAGE: usize = 3;
/// Tokens that prime the assistant's reply.
const REPLY_PRIMER: usize = 3;

fn bpe() -> &'static CoreBPE {
    static BPE: OnceLock<CoreBPE> = OnceLock::new();
    // cl100k_base is the encoding of gpt-3.5-turbo and gpt-4; other vendors' tokenizers differ
    // by a few percent, which is close enough for budgets and fallback usage.
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().expect("the bundled cl100k_base encoding loads"))
}

/// Tokens in `text`.
pub fn count(text: &str) -> usize {
    bpe().encode_with_special_tokens(text).len()
}

/// Tokens a chat prompt of these message contents costs.
pub fn count_prompt<'a>(contents: impl IntoIterator<Item = &'a str>) -> usize {
    contents.into_iter().map(|c| count(c) + PER_MESSAGE).sum::<usize>() + REPLY_PRIMER
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts match cl100k_base for known strings.
    #[test]
    fn counts_known_strings() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello world"), 2);
        assert_eq!(count_prompt(["hello world"]), 2 + PER_MESSAGE + REPLY_PRIMER);
    }
}
