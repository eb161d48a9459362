//! Why a turn failed, for the dialect adapters to put in their own error shapes.

use crate::ids::InvalidId;
use crate::{memory, providers};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field is well-formed but its value is out of bounds (422).
    #[error("{0}")]
    InvalidParameter(String),
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// A message longer than the server accepts (413).
    #[error("a message has {chars} characters; the limit is {limit}")]
    MessageTooLong { chars: usize, limit: usize },
    #[error(transparent)]
    Memory(#[from] memory::Error),
    #[error(transparent)]
    Providers(#[from] providers::Error),
    /// The store accepted the turn but returned no reply to point at.
    #[error("the store did not return the stored reply")]
    NotRecorded,
}

impl Error {
    /// A short, stable name for the failure (the `error.type` of the turn's span).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidParameter(_) => "invalid_parameter",
            Self::InvalidId(_) => "invalid_id",
            Self::MessageTooLong { .. } => "message_too_long",
            Self::Memory(_) => "memory",
            Self::Providers(e) => e.kind(),
            Self::NotRecorded => "not_recorded",
        }
    }
}
