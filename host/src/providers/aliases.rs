//! Model aliases (`[providers.aliases]`): the model names clients send, mapped to what the
//! server should use. Coding agents ask for their own vendor's models (Claude Code sends
//! `claude-…` names, including a small one for background work); an alias such as
//! `"claude-*" = "openai/gpt-4.1"` routes them to any provider.

use std::collections::BTreeMap;

/// What `model` stands for: an exact alias first, else the most specific matching pattern
/// (the longest one), else nothing.
pub fn resolve<'a>(aliases: &'a BTreeMap<String, String>, model: &str) -> Option<&'a str> {
    if let Some(target) = aliases.get(model) {
        return Some(target);
    }
    aliases
        .iter()
        .filter(|(pattern, _)| pattern.contains('*') && matches(pattern, model))
        .max_by_key(|(pattern, _)| pattern.len())
        .map(|(_, target)| target.as_str())
}

/// A glob where `*` matches any run of characters.
fn matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let mut parts: Vec<&str> = parts.collect();
    let last = parts.pop().unwrap_or_default();
    for part in parts {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_win_then_the_longest_pattern() {
        let aliases: BTreeMap<String, String> = [
            ("claude-*", "openai/gpt-4.1"),
            ("claude-haiku-*", "openai/gpt-4.1-mini"),
            ("claude-opus-5-5", "anthropic/claude-opus-5-5"),
            ("*-mini", "ollama/llama3.2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(resolve(&aliases, "claude-opus-5-5"), Some("anthropic/claude-opus-5-5"));
        assert_eq!(resolve(&aliases, "claude-haiku-4-5"), Some("openai/gpt-4.1-mini"));
        assert_eq!(resolve(&aliases, "claude-sonnet-4-5"), Some("openai/gpt-4.1"));
        assert_eq!(resolve(&aliases, "gpt-4o-mini"), Some("ollama/llama3.2"));
        assert_eq!(resolve(&aliases, "gpt-4o"), None);
        assert!(matches("a*b*c", "aXbYc") && !matches("a*b*c", "aXc") && matches("*", "") && !matches("ab*", "a"));
    }
}
