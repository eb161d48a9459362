//! The memory manager: owns sessions and builds each prompt from the system prompt and the
//! short-term window of recent turns, fitted to a token budget. It is the only layer that
//! talks to the [`Store`].

use std::sync::Arc;

use crate::config::MemoryConfig;
use crate::store::{self, Message, NewMessage, Role, Scope, Session, Store};
use crate::tokens;

/// Longest session title, in characters, derived from the first message.
const TITLE_CHARS: usize = 60;

/// Why a memory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such session for this user (another user's session is reported the same way).
    #[error("session {0:?} not found")]
    SessionNotFound(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// One message of a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptMessage {
    pub role: Role,
    pub content: String,
}

/// Sessions, history and prompt building over one store.
pub struct Memory {
    store: Arc<dyn Store>,
    config: MemoryConfig,
}

/// A turn to record once the provider has answered.
pub struct Turn {
    pub user: String,
    pub reply: String,
    /// Kept with the reply: provider, model, usage, finish reason.
    pub metadata: serde_json::Value,
}

impl Memory {
    pub fn new(store: Arc<dyn Store>, config: MemoryConfig) -> Self {
        Self { store, config }
    }

    /// The store's name, for `/status`.
    pub fn store_name(&self) -> &str {
        self.store.name()
    }

    /// The session, if it exists and belongs to `user`.
    pub async fn session(&self, user: &str, id: &str) -> Result<Session, Error> {
        match self.store.get_session(id).await? {
            Some(session) if session.user == user => Ok(session),
            _ => Err(Error::SessionNotFound(id.to_string())),
        }
    }

    /// For a session id the client chose: whether it already exists for `user`. Another user's
    /// session is reported as not found, never shared.
    pub async fn claim(&self, user: &str, id: &str) -> Result<bool, Error> {
        match self.store.get_session(id).await? {
            Some(session) if session.user == user => Ok(true),
            Some(_) => Err(Error::SessionNotFound(id.to_string())),
            None => Ok(false),
        }
    }

    /// The user's sessions, most recently active first.
    pub async fn sessions(&self, user: &str, limit: usize) -> Result<Vec<Session>, Error> {
        Ok(self.store.list_sessions(user, limit).await?)
    }

    /// A page of history, oldest first: up to `limit` messages before `before`.
    pub async fn history(&self, scope: &Scope, before: Option<u64>, limit: usize) -> Result<Vec<Message>, Error> {
        Ok(self.store.list_messages(scope, before, limit).await?)
    }

    /// Deletes the session and everything derived from it.
    pub async fn delete(&self, scope: &Scope) -> Result<(), Error> {
        match self.store.delete_session(scope).await? {
            true => Ok(()),
            false => Err(Error::SessionNotFound(scope.session.clone())),
        }
    }

    /// The prompt for `message`: the system prompt, then as much recent history of the session
    /// (if any) as fits the budget, then the message itself.
    pub async fn prompt(
        &self,
        session: Option<&Scope>,
        system: Option<&str>,
        message: &str,
    ) -> Result<Vec<PromptMessage>, Error> {
        let fixed = tokens::count_prompt(system.into_iter().chain([message]));
        let mut budget = self.config.max_prompt_tokens.saturating_sub(fixed);
        let history = match session {
            Some(scope) => self.store.list_messages(scope, None, self.config.window_messages).await?,
            None => Vec::new(),
        };
        // Walk back from the newest turn and stop at the first that does not fit, so the window
        // is always a contiguous, most-recent slice.
        let mut window = Vec::new();
        for m in history.iter().rev().filter(|m| matches!(m.role, Role::User | Role::Assistant)) {
            let cost = tokens::count_prompt([m.content.as_str()]) - tokens::count_prompt([]);
            if cost > budget {
                break;
            }
            budget -= cost;
            window.push(PromptMessage { role: m.role, content: m.content.clone() });
        }
        window.reverse();

        let mut prompt = Vec::with_capacity(window.len() + 2);
        if let Some(system) = system {
            prompt.push(PromptMessage { role: Role::System, content: system.to_string() });
        }
        prompt.extend(window);
        prompt.push(PromptMessage { role: Role::User, content: message.to_string() });
        Ok(prompt)
    }

    /// Stores the user's message and the reply as one atomic, durable append; creates the
    /// session, titled after the message, if it is new.
    pub async fn record(&self, scope: &Scope, turn: Turn) -> Result<Vec<Message>, Error> {
        let now = store::now_ms();
        let title = Some(title_of(&turn.user));
        let messages = vec![
            NewMessage { role: Role::User, content: turn.user, name: None, metadata: None, created_at_ms: now },
            NewMessage {
                role: Role::Assistant,
                content: turn.reply,
                name: None,
                metadata: Some(turn.metadata),
                created_at_ms: now,
            },
        ];
        Ok(self.store.append(scope, messages, title).await?)
    }
}

/// The first line of `message`, cut to [`TITLE_CHARS`] characters.
fn title_of(message: &str) -> String {
    let line = message.trim().lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(TITLE_CHARS) {
        Some((cut, _)) => format!("{}…", line[..cut].trim_end()),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn memory(max_prompt_tokens: usize) -> Memory {
        Memory::new(Arc::new(SledStore::temporary().unwrap()), MemoryConfig { window_messages: 40, max_prompt_tokens })
    }

    async fn turns(memory: &Memory, scope: &Scope, n: usize) {
        for i in 0..n {
            let turn =
                Turn { user: format!("question {i}"), reply: format!("answer {i}"), metadata: serde_json::json!({}) };
            memory.record(scope, turn).await.unwrap();
        }
    }

    /// The prompt is system, the most recent history in order, then the new message.
    #[tokio::test]
    async fn prompt_keeps_recent_history_in_order() {
        let memory = memory(10_000);
        let scope = Scope::new("u", "s");
        turns(&memory, &scope, 3).await;
        let prompt = memory.prompt(Some(&scope), Some("be brief"), "next").await.unwrap();
        let contents: Vec<_> = prompt.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(
            contents,
            ["be brief", "question 0", "answer 0", "question 1", "answer 1", "question 2", "answer 2", "next"]
        );
        assert_eq!(prompt[0].role, Role::System);
        assert_eq!(prompt[1].role, Role::User);
        assert_eq!(prompt[2].role, Role::Assistant);
    }

    /// A tight budget keeps only the newest turns that fit.
    #[tokio::test]
    async fn prompt_fits_the_budget() {
        let memory = memory(40);
        let scope = Scope::new("u", "s");
        turns(&memory, &scope, 10).await;
        let prompt = memory.prompt(Some(&scope), None, "next").await.unwrap();
        assert!(prompt.len() < 21, "{prompt:?}");
        assert_eq!(prompt.last().unwrap().content, "next");
        assert_eq!(prompt[prompt.len() - 2].content, "answer 9");
        let total = tokens::count_prompt(prompt.iter().map(|m| m.content.as_str()));
        assert!(total <= 40, "{total} tokens");
    }

    /// Titles come from the first line and are cut on a character boundary.
    #[test]
    fn titles() {
        assert_eq!(title_of("  hello\nworld"), "hello");
        let long = "é".repeat(100);
        assert_eq!(title_of(&long).chars().count(), TITLE_CHARS + 1);
    }
}
