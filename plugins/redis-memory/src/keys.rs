//! Key names. Every key starts with the configured prefix, so several deployments (or test
//! runs) can share one Redis, and `{prefix}:*` finds everything one of them wrote.

use codexcontinue_sdk::StoreError;

/// The prefix when neither the manifest nor `CODEXCONTINUE_REDIS_PREFIX` sets one.
pub const DEFAULT_PREFIX: &str = "cc";

/// The key names of one deployment.
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`, which must be non-empty and free of spaces and wildcards.
    pub fn new(prefix: &str) -> Result<Self, StoreError> {
        if prefix.is_empty() || prefix.contains(|c: char| c.is_whitespace() || "*?[]".contains(c)) {
            return Err(StoreError::Invalid(format!(
                "the key prefix {prefix:?} must be non-empty, without spaces or wildcards"
            )));
        }
        Ok(Self { prefix: prefix.to_string() })
    }

    /// Hash: `user`, `title`, `created`, `updated`.
    pub fn session(&self, id: &str) -> String {
        format!("{}:session:{id}", self.prefix)
    }

    /// List of message JSON; seq n is at index n-1.
    pub fn messages(&self, id: &str) -> String {
        format!("{}:messages:{id}", self.prefix)
    }

    /// Sorted set of the user's session ids, scored by last activity (ms).
    pub fn user_sessions(&self, user: &str) -> String {
        format!("{}:user:{user}:sessions", self.prefix)
    }

    /// String: the summary as JSON.
    pub fn summary(&self, id: &str) -> String {
        format!("{}:summary:{id}", self.prefix)
    }

    /// Hash: `{seq}:{model}` -> embedding JSON.
    pub fn embeddings(&self, id: &str) -> String {
        format!("{}:embeddings:{id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of a session sits under the prefix, and bad prefixes are refused.
    #[test]
    fn layout() {
        let k = Keys::new("t1").unwrap();
        assert_eq!(k.session("s"), "t1:session:s");
        assert_eq!(k.messages("s"), "t1:messages:s");
        assert_eq!(k.user_sessions("u"), "t1:user:u:sessions");
        assert_eq!(k.summary("s"), "t1:summary:s");
        assert_eq!(k.embeddings("s"), "t1:embeddings:s");
        for bad in ["", "a b", "a*"] {
            assert!(Keys::new(bad).is_err(), "{bad:?}");
        }
    }
}
