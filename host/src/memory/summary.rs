//! Rolling session summaries, written by the session's own model once the history has outgrown
//! the short-term window. The memory manager runs this in the background, never on a request's
//! critical path.

use super::model::Model;
use crate::store::{self, Message, Role, Scope, Store, Summary};
use crate::tokens;

/// What the summarising model is told.
const INSTRUCTIONS: &str = "You maintain the running summary of a conversation between a user and an assistant. \
Keep every decision, fact, name, number, preference and open question; drop pleasantries. \
Write plain sentences, at most 200 words, and nothing else.";

/// Most tokens of new messages folded into the summary per model call; longer backlogs are
/// summarised in several rounds.
const ROUND_TOKENS: usize = 6_000;

/// Folds every message of `scope` but the newest `keep` into its summary, in as many rounds as
/// needed; turns added meanwhile are caught up before it returns.
pub async fn summarize(store: &dyn Store, model: &dyn Model, scope: &Scope, keep: u64) -> Result<(), String> {
    let mut summary = store.get_summary(scope).await.map_err(|e| e.to_string())?;
    loop {
        let done = summary.as_ref().map_or(0, |s| s.through_seq);
        let last =
            store.get_session(&scope.user, &scope.session).await.map_err(|e| e.to_string())?.map_or(0, |s| s.last_seq);
        let through = last.saturating_sub(keep);
        if done >= through {
            return Ok(());
        }
        let batch = unsummarized(store, scope, done, through).await.map_err(|e| e.to_string())?;
        let Some(last) = batch.last().map(|m| m.seq) else { return Ok(()) };
        let transcript: Vec<String> = batch
            .iter()
            .map(|m| format!("{}: {}", if m.role == Role::User { "User" } else { "Assistant" }, m.content))
            .collect();
        let previous = summary.as_ref().map_or("(none yet)", |s| s.text.as_str());
        let prompt = format!(
            "Summary so far:\n{previous}\n\nNew messages:\n{}\n\nWrite the updated summary.",
            transcript.join("\n")
        );
        let text = model.complete(INSTRUCTIONS, &prompt).await?;
        let next = Summary { text: text.trim().to_string(), through_seq: last, updated_at_ms: store::now_ms() };
        store.put_summary(scope, next.clone()).await.map_err(|e| e.to_string())?;
        tracing::debug!(session = %scope.session, through = last, "summary updated");
        summary = Some(next);
    }
}

/// The user and assistant messages after `done`, up to `through`, oldest first, at most
/// [`ROUND_TOKENS`] of them (and always at least one).
async fn unsummarized(store: &dyn Store, scope: &Scope, done: u64, through: u64) -> store::Result<Vec<Message>> {
    // Pages come newest first from `before`; walk back to `done`, then keep the oldest slice.
    let mut older = Vec::new();
    let mut before = Some(through + 1);
    while let Some(b) = before.filter(|b| *b > done + 1) {
        let page = store.list_messages(scope, Some(b), 500).await?;
        before = page.first().map(|m| m.seq).filter(|_| page.len() == 500);
        older.extend(page.into_iter().rev().filter(|m| m.seq > done));
    }
    older.reverse();
    let mut budget = ROUND_TOKENS;
    let mut batch = Vec::new();
    for m in older.into_iter().filter(|m| matches!(m.role, Role::User | Role::Assistant)) {
        let cost = tokens::count(&m.content);
        if cost > budget && !batch.is_empty() {
            break;
        }
        budget = budget.saturating_sub(cost);
        batch.push(m);
    }
    Ok(batch)
}
