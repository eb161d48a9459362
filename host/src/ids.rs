//! Client-chosen ids (sessions, workspaces): 1-128 letters, digits and `._-`, so they are safe
//! in store keys, URLs and logs.

/// An id that breaks the rules, and which field it came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{field} {rule}")]
pub struct InvalidId {
    pub field: String,
    /// A session id (answered 400 `invalid_session_id` rather than 422).
    pub session: bool,
    rule: &'static str,
}

/// The session id `GET /memory/facts` would shadow.
const RESERVED_SESSION: &str = "facts";

pub fn check_id(field: &str, id: &str) -> Result<(), InvalidId> {
    let valid = !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    let rule = "must be 1-128 letters, digits and ._-";
    valid.then_some(()).ok_or_else(|| InvalidId { field: field.to_string(), session: false, rule })
}

pub fn check_session_id(field: &str, id: &str) -> Result<(), InvalidId> {
    check_id(field, id).map_err(|e| InvalidId { session: true, ..e })?;
    if id == RESERVED_SESSION {
        let rule = "cannot be `facts`, which `/memory/facts` (the user's facts) answers for";
        return Err(InvalidId { field: field.to_string(), session: true, rule });
    }
    Ok(())
}
