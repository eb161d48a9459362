//! The plugin's schema and its versioned migrations. Migrations only ever append: a released
//! step is never edited, a change is a new step. `init()` applies the missing ones in one
//! transaction under an advisory lock, so hosts starting together migrate once.

use codexcontinue_sdk::StoreError;

/// The schema when neither the manifest nor `CODEXCONTINUE_PG_SCHEMA` sets one.
pub const DEFAULT_SCHEMA: &str = "codexcontinue";

/// One migration: a version, a name for `schema_migrations`, and its statements (`{s}` is the
/// quoted schema). One statement per string: the capability prepares each one.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub statements: &'static [&'static str],
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "sessions, messages, summaries, embeddings",
    statements: &[
        "CREATE TABLE {s}.sessions (
            id text PRIMARY KEY,
            user_id text NOT NULL,
            title text,
            created_at_ms bigint NOT NULL,
            updated_at_ms bigint NOT NULL,
            message_count bigint NOT NULL DEFAULT 0,
            last_seq bigint NOT NULL DEFAULT 0
        )",
        "CREATE INDEX sessions_by_user ON {s}.sessions (user_id, updated_at_ms DESC, id DESC)",
        "CREATE TABLE {s}.messages (
            session_id text NOT NULL REFERENCES {s}.sessions (id) ON DELETE CASCADE,
            seq bigint NOT NULL,
            role text NOT NULL,
            content text NOT NULL,
            name text,
            metadata jsonb,
            created_at_ms bigint NOT NULL,
            PRIMARY KEY (session_id, seq)
        )",
        "CREATE TABLE {s}.summaries (
            session_id text PRIMARY KEY REFERENCES {s}.sessions (id) ON DELETE CASCADE,
            text text NOT NULL,
            through_seq bigint NOT NULL,
            updated_at_ms bigint NOT NULL
        )",
        "CREATE TABLE {s}.embeddings (
            session_id text NOT NULL REFERENCES {s}.sessions (id) ON DELETE CASCADE,
            seq bigint NOT NULL,
            model text NOT NULL,
            vector real[] NOT NULL,
            PRIMARY KEY (session_id, seq, model)
        )",
    ],
}];

/// The migrations' bookkeeping table, created before anything else.
pub const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// A schema name checked to be a plain identifier, quoted for SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema(String);

impl Schema {
    /// Accepts lowercase letters, digits and `_`, not starting with a digit, at most 63 bytes
    /// (Postgres's limit), so the name never needs escaping.
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let ok = !name.is_empty()
            && name.len() <= 63
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        match ok {
            true => Ok(Self(name.to_string())),
            false => Err(StoreError::Invalid(format!(
                "schema {name:?} must be lowercase letters, digits and _, not starting with a digit"
            ))),
        }
    }

    /// The name, unquoted.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// `sql` with `{s}` replaced by the quoted schema.
    pub fn sql(&self, sql: &str) -> String {
        sql.replace("{s}", &format!("\"{}\"", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain identifiers are accepted and quoted; anything needing escapes is refused.
    #[test]
    fn schema_names() {
        let s = Schema::new("cc_test_1").unwrap();
        assert_eq!(s.sql("SELECT 1 FROM {s}.sessions"), "SELECT 1 FROM \"cc_test_1\".sessions");
        for bad in ["", "Upper", "1abc", "a-b", "a\"b", "a;drop", &"x".repeat(64)] {
            assert!(Schema::new(bad).is_err(), "{bad:?}");
        }
    }

    /// Versions strictly increase, so the order of application is the order of the list.
    #[test]
    fn migrations_are_ordered() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert!(MIGRATIONS.iter().all(|m| !m.statements.is_empty() && m.statements.iter().all(|s| !s.contains(';'))));
    }
}
