//! The echo reply: which text it says, and how `max-tokens` and `stop` cut it. Pure functions,
//! so the demo's behaviour is unit tested natively.

use codexcontinue_sdk::{ChatRequest, ChatResponse, FinishReason, Message, ProviderError, Role};

/// The chat model's id.
pub(crate) const MODEL: &str = "echo";

/// The context window echo advertises; it reads any length, but the host fits prompts to this
/// like a small real model, which keeps the memory window behaviour visible in the demo.
pub(crate) const CONTEXT_WINDOW: u32 = 8192;

/// The complete reply to `request`; usage is left to the host, which counts tokens itself.
///
/// Fails with `bad-request` when there are no messages or no user message.
pub(crate) fn respond(request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
    let text = reply_text(&request.messages)?;
    let (content, finish_reason) = apply_limits(&text, &request.stop, request.max_tokens);
    Ok(ChatResponse {
        content: content.to_owned(),
        reasoning: Vec::new(),
        tool_calls: Vec::new(),
        finish_reason,
        usage: None,
        model: MODEL.into(),
    })
}

/// Quotes the last user message and counts the user and assistant messages before it.
fn reply_text(messages: &[Message]) -> Result<String, ProviderError> {
    if messages.is_empty() {
        return Err(ProviderError::BadRequest("the request has no messages".into()));
    }
    let last_user = messages
        .iter()
        .rposition(|m| m.role == Role::User)
        .ok_or_else(|| ProviderError::BadRequest("the request has no user message".into()))?;
    let earlier = messages[..last_user].iter().filter(|m| matches!(m.role, Role::User | Role::Assistant)).count();
    let noun = if earlier == 1 { "message" } else { "messages" };
    Ok(format!(
        "Echo (offline demo): you said \"{}\". I can see {earlier} earlier {noun} in this \
         conversation. Set OPENAI_API_KEY or another provider key to talk to a real model.",
        messages[last_user].text()
    ))
}

/// Cuts `text` at the earliest stop string, then to `max_tokens` words (counting a word as a
/// token); `length` when the word limit cut something, else `stop`.
fn apply_limits<'a>(text: &'a str, stop: &[String], max_tokens: Option<u32>) -> (&'a str, FinishReason) {
    let cut = stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min().unwrap_or(text.len());
    let content = &text[..cut];
    let pieces = words(content);
    match max_tokens.map(|max| max as usize) {
        Some(max) if pieces.len() > max => {
            let end: usize = pieces[..max].iter().map(|p| p.len()).sum();
            (content[..end].trim_end(), FinishReason::Length)
        }
        _ => (content, FinishReason::Stop),
    }
}

/// Splits `text` into words, each with the whitespace that follows it (leading whitespace stays
/// with the first word), so the pieces concatenate back to `text` exactly: these are the
/// streamed deltas.
pub(crate) fn words(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut seen_word = false;
    let mut after_word_space = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            after_word_space = seen_word;
        } else if after_word_space {
            pieces.push(&text[start..i]);
            start = i;
            after_word_space = false;
        } else {
            seen_word = true;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: Role, content: &str) -> Message {
        Message::new(role, content)
    }

    fn request(messages: Vec<Message>) -> ChatRequest {
        ChatRequest::new(MODEL, messages)
    }

    fn conversation() -> Vec<Message> {
        vec![
            message(Role::System, "be nice"),
            message(Role::User, "hi"),
            message(Role::Assistant, "hello there"),
            message(Role::User, "hello"),
        ]
    }

    /// The reply quotes the last user message and counts earlier user/assistant turns only.
    #[test]
    fn reply_counts_earlier_messages() {
        let response = respond(&request(conversation())).unwrap();
        assert_eq!(
            response.content,
            "Echo (offline demo): you said \"hello\". I can see 2 earlier messages in this \
             conversation. Set OPENAI_API_KEY or another provider key to talk to a real model."
        );
        assert_eq!(response.finish_reason, FinishReason::Stop);
        assert_eq!(response.usage, None);
        assert_eq!(response.model, "echo");

        let first = respond(&request(vec![message(Role::User, "x")])).unwrap();
        assert!(first.content.contains("I can see 0 earlier messages"));
        let second =
            respond(&request(vec![message(Role::User, "x"), message(Role::User, "y"), message(Role::Tool, "ignored")]))
                .unwrap();
        assert!(second.content.contains("you said \"y\". I can see 1 earlier message in"));
    }

    /// No messages, or no user message, is a bad request.
    #[test]
    fn bad_requests() {
        assert!(matches!(respond(&request(vec![])), Err(ProviderError::BadRequest(_))));
        let only_system = request(vec![message(Role::System, "s")]);
        assert!(matches!(respond(&only_system), Err(ProviderError::BadRequest(_))));
    }

    /// `max-tokens` keeps whole words and reports `length`; a limit that cuts nothing does not.
    #[test]
    fn max_tokens_truncates_words() {
        let mut req = request(conversation());
        req.max_tokens = Some(3);
        let response = respond(&req).unwrap();
        assert_eq!(response.content, "Echo (offline demo):");
        assert_eq!(response.finish_reason, FinishReason::Length);

        req.max_tokens = Some(0);
        assert_eq!(respond(&req).unwrap().content, "");

        req.max_tokens = Some(1000);
        assert_eq!(respond(&req).unwrap().finish_reason, FinishReason::Stop);
    }

    /// The reply stops before the earliest stop string and reports `stop`.
    #[test]
    fn stop_strings_cut() {
        let mut req = request(conversation());
        req.stop = vec!["earlier".into(), "said".into(), String::new()];
        let response = respond(&req).unwrap();
        assert_eq!(response.content, "Echo (offline demo): you ");
        assert_eq!(response.finish_reason, FinishReason::Stop);

        // The stop cut comes first; the word limit then applies to what is left.
        req.max_tokens = Some(2);
        let response = respond(&req).unwrap();
        assert_eq!(response.content, "Echo (offline");
        assert_eq!(response.finish_reason, FinishReason::Length);
    }

    /// Streamed pieces are words with their trailing whitespace and rebuild the text exactly.
    #[test]
    fn words_rebuild_text() {
        assert_eq!(words("a bb  c\n"), ["a ", "bb  ", "c\n"]);
        assert_eq!(words("  lead x"), ["  lead ", "x"]);
        assert!(words("").is_empty());
        assert_eq!(words("   "), ["   "]);
        let reply = respond(&request(conversation())).unwrap().content;
        assert_eq!(words(&reply).concat(), reply);
        assert_eq!(words(&reply).len(), reply.split_whitespace().count());
    }
}
