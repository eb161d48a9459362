//! Client API keys. With keys configured (`CODEXCONTINUE_API_KEYS="alice:cc-…,bob:cc-…"`, from
//! the environment or `.env`), every API call must present one, and the key decides the user.
//!
//! Only SHA-256 digests of the keys are kept, and lookups go by digest, so neither a memory
//! dump nor the timing of a comparison gives a key away.

use std::collections::HashMap;
use std::fmt;

use sha2::{Digest, Sha256};

/// The environment variable that turns client authentication on.
pub const API_KEYS_VAR: &str = "CODEXCONTINUE_API_KEYS";

/// The environment variable holding the bearer token of `/admin/*` and `/status`'s admin view.
pub const ADMIN_TOKEN_VAR: &str = "CODEXCONTINUE_ADMIN_TOKEN";

/// Shortest key accepted: anything shorter can be guessed.
const MIN_KEY_LEN: usize = 16;

/// Fewest different characters in the admin token: `aaaaaaaaaaaaaaaa` or `abababab...` are
/// long but guessable; a random token of 16 hex digits has about 10 different ones.
const MIN_DISTINCT_CHARS: usize = 6;

/// Key digests -> user ids.
#[derive(Clone, Default)]
pub struct ApiKeys(HashMap<[u8; 32], String>);

impl ApiKeys {
    /// Parses `user:key` pairs separated by commas or newlines. Errors name the entry by its
    /// position and user, never by its key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        let entries = text.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty());
        for (n, entry) in entries.enumerate() {
            let n = n + 1;
            let Some((user, key)) = entry.split_once(':') else {
                return Err(format!("{API_KEYS_VAR}: entry {n} is not `user:key`"));
            };
            let (user, key) = (user.trim(), key.trim());
            if !valid_user(user) {
                return Err(format!(
                    "{API_KEYS_VAR}: entry {n} has an invalid user id (1-128 letters, digits and ._@-)"
                ));
            }
            if key.len() < MIN_KEY_LEN || key.chars().any(char::is_whitespace) {
                return Err(format!(
                    "{API_KEYS_VAR}: the key of {user:?} must be at least {MIN_KEY_LEN} characters without spaces"
                ));
            }
            if keys.insert(digest(key), user.to_string()).is_some() {
                return Err(format!("{API_KEYS_VAR}: the key of {user:?} is also given to another entry"));
            }
        }
        Ok(Self(keys))
    }

    /// The user a key belongs to.
    pub fn user(&self, key: &str) -> Option<&str> {
        self.0.get(&digest(key)).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&str> = self.0.values().map(String::as_str).collect();
        users.sort_unstable();
        f.debug_tuple("ApiKeys").field(&users).finish()
    }
}

/// Checks the admin token as client keys are checked (at least 16 characters, no spaces), and
/// also that it is not a run of a few repeated characters. The error never quotes the token.
pub fn check_admin_token(token: &str) -> Result<(), String> {
    if token.len() < MIN_KEY_LEN || token.chars().any(char::is_whitespace) {
        return Err(format!(
            "{ADMIN_TOKEN_VAR} must be at least {MIN_KEY_LEN} characters without spaces; \
             make one with `openssl rand -hex 32`"
        ));
    }
    let distinct: std::collections::HashSet<char> = token.chars().collect();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return Err(format!(
            "{ADMIN_TOKEN_VAR} repeats too few characters to be hard to guess (fewer than {MIN_DISTINCT_CHARS} \
             different ones); make one with `openssl rand -hex 32`"
        ));
    }
    Ok(())
}

/// A user id as the API accepts it: 1-128 characters of letters, digits and `._@:-`.
pub fn valid_user_id(user: &str) -> bool {
    !user.is_empty() && user.len() <= 128 && user.chars().all(|c| c.is_ascii_alphanumeric() || "._@:-".contains(c))
}

/// A user id that can have keys: an API user id without `:`, which separates user from key.
pub fn valid_user(user: &str) -> bool {
    valid_user_id(user) && !user.contains(':')
}

/// A new key: `cc-` and 64 hex digits from the operating system's random source.
pub fn generate() -> String {
    // Two v4 UUIDs are 244 random bits from getrandom.
    let bytes = [uuid::Uuid::new_v4().into_bytes(), uuid::Uuid::new_v4().into_bytes()].concat();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("cc-{hex}")
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keys_to_users() {
        let keys = ApiKeys::parse("alice:sk-alice-0123456789, bob:sk-bob-0123456789abc\n").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.user("sk-alice-0123456789"), Some("alice"));
        assert_eq!(keys.user("sk-bob-0123456789abc"), Some("bob"));
        assert_eq!(keys.user("sk-alice-012345678"), None);
        assert_eq!(keys.user(""), None);
    }

    #[test]
    fn errors_never_show_the_key() {
        for (text, expected) in [
            ("alice-sk-alice-0123456789", "entry 1 is not `user:key`"),
            ("alice:short", "at least 16 characters"),
            ("al ice:sk-alice-0123456789", "invalid user id"),
            ("a:sk-same-0123456789,b:sk-same-0123456789", "also given to another entry"),
        ] {
            let error = ApiKeys::parse(text).unwrap_err();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("sk-"), "{error}");
        }
        let debug = format!("{:?}", ApiKeys::parse("alice:sk-alice-0123456789").unwrap());
        assert_eq!(debug, r#"ApiKeys(["alice"])"#);
    }

    /// Short, spaced or repetitive admin tokens are refused without quoting them; generated keys
    /// pass.
    #[test]
    fn admin_token_rule() {
        for (token, expected) in [
            ("a", "at least 16"),
            ("sk-admin-012345", "at least 16"),
            ("sk admin 0123456789", "without spaces"),
            ("aaaaaaaaaaaaaaaaaaaaaaaa", "too few characters"),
            ("abababababababababab", "too few characters"),
        ] {
            let error = check_admin_token(token).unwrap_err();
            assert!(error.contains(expected) && error.contains(ADMIN_TOKEN_VAR), "{error}");
            assert!(token.len() < 4 || !error.contains(token), "{error}");
        }
        assert_eq!(check_admin_token(&generate()), Ok(()));
        assert_eq!(check_admin_token("s3cret-admin-token-0"), Ok(()));
    }

    #[test]
    fn generated_keys_are_long_random_and_accepted() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(a.len(), 67);
        assert!(a.starts_with("cc-") && a[3..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(ApiKeys::parse(&format!("alice:{a}")).unwrap().user(&a), Some("alice"));
    }
}
