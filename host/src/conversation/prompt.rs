//! Reading a dialect's message list: what the client added this turn, what to recall by, the
//! system prompt, and how big it all is.

use crate::memory::PromptMessage;
use crate::runtime::types::{Message, Role};
use crate::store;
use crate::tokens;

/// Where the client's new input starts: after the last reply it has seen.
pub fn input_start(messages: &[Message]) -> usize {
    messages.iter().rposition(|m| m.role == Role::Assistant).map_or(0, |i| i + 1)
}

/// The client's new input (its message, or tool results), as memory stores it.
pub fn new_input(messages: &[Message]) -> Vec<PromptMessage> {
    messages[input_start(messages)..]
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| PromptMessage { role: store_role(m.role), content: m.content.clone() })
        .collect()
}

/// What memory recalls by: the newest user message.
pub fn query(messages: &[Message]) -> Option<String> {
    messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.content.clone())
}

/// The client's system messages as one prompt.
pub fn system(messages: &[Message]) -> Option<String> {
    let parts: Vec<&str> = messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// Tokens the client's messages take.
pub fn tokens(messages: &[Message]) -> usize {
    tokens::count_prompt(messages.iter().map(|m| m.content.as_str()))
}

fn store_role(role: Role) -> store::Role {
    match role {
        Role::System => store::Role::System,
        Role::User => store::Role::User,
        Role::Assistant => store::Role::Assistant,
        Role::Tool => store::Role::Tool,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: Role, content: &str) -> Message {
        Message { role, content: content.into(), name: None, tool_calls: Vec::new(), tool_call_id: None }
    }

    /// Tool results after a reply are the new input; the user's earlier message is not.
    #[test]
    fn the_new_input_follows_the_last_reply() {
        let messages = [
            message(Role::System, "be brief"),
            message(Role::User, "weather?"),
            message(Role::Assistant, ""),
            message(Role::Tool, "sunny"),
        ];
        let input = new_input(&messages);
        assert_eq!(input.len(), 1);
        assert_eq!((input[0].role, input[0].content.as_str()), (store::Role::Tool, "sunny"));
        assert_eq!(query(&messages).as_deref(), Some("weather?"));
        assert_eq!(system(&messages).as_deref(), Some("be brief"));
        assert_eq!(new_input(&messages[..2]).len(), 1, "a first message is all input");
    }
}
