//! The request headers every dialect understands, beside its own body fields.

use axum::http::HeaderMap;

/// Turns memory on for clients whose wire format has no session: turns are stored in this
/// session, created on first use.
pub const SESSION_HEADER: &str = "x-session-id";
/// Recalls a workspace's files into the chat.
pub const WORKSPACE_HEADER: &str = "x-workspace-id";
/// Picks a provider without renaming the model.
pub const PROVIDER_HEADER: &str = "x-provider";

/// The memory session a dialect's request names: `X-Session-Id`, else (when
/// `[memory] agent_sessions` is on) the coding agent's own conversation id header.
pub fn session<'a>(headers: &'a HeaderMap, agent_header: &str, agent_sessions: bool) -> Option<&'a str> {
    header(headers, SESSION_HEADER).or_else(|| agent_sessions.then(|| header(headers, agent_header)).flatten())
}

/// A header's value, when present, text and not empty.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}
