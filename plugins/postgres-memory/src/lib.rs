//! Conversation memory in PostgreSQL, through the host's pooled `postgres` capability.
//!
//! Everything lives in one schema (`schema` config, default `codexcontinue`) whose versioned
//! migrations this plugin owns (see [`schema`]). Appends lock the session row, so concurrent
//! writers on any number of hosts get distinct, consecutive seqs; deleting a session cascades
//! to its messages, summary and embeddings.

mod rows;
mod schema;

use codexcontinue_sdk::postgres::{Connection, DbValue, PgError, RowSet};
use codexcontinue_sdk::{
    Embedding, MemoryStore, NewMessage, Scope, SessionInfo, StoreError, StoredMessage, Summary, config,
    export_memory_store,
};

use codexcontinue_sdk::vendor::role_name;
use rows::{int8, opt};
use schema::{BOOKKEEPING, MIGRATIONS, Schema};

/// Where Postgres is when neither the manifest nor `DATABASE_URL` says.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The store; state lives in Postgres, the instance is fresh for every call.
struct PostgresMemory;

/// One pooled connection and the schema it works in.
struct Db {
    connection: Connection,
    schema: Schema,
}

fn connect() -> Result<Db, StoreError> {
    let schema = Schema::new(&config::get_or("schema", schema::DEFAULT_SCHEMA))?;
    let connection = Connection::open(&config::get_or("database_url", DEFAULT_URL)).map_err(error)?;
    Ok(Db { connection, schema })
}

fn error(e: PgError) -> StoreError {
    match e {
        PgError::Denied(m) | PgError::Connection(m) => StoreError::Unavailable(m),
        PgError::Conversion(m) => StoreError::Invalid(m),
        // Serialization failures and deadlocks are races the caller may retry.
        PgError::Query(m) if m.contains("SQLSTATE 40001") || m.contains("SQLSTATE 40P01") => StoreError::Conflict(m),
        PgError::Query(m) | PgError::Other(m) => StoreError::Other(m),
    }
}

fn text(s: &str) -> DbValue {
    DbValue::Text(s.to_string())
}

impl Db {
    fn query(&self, sql: &str, params: &[DbValue]) -> Result<RowSet, StoreError> {
        self.connection.query(&self.schema.sql(sql), params).map_err(error)
    }

    fn execute(&self, sql: &str, params: &[DbValue]) -> Result<u64, StoreError> {
        self.connection.execute(&self.schema.sql(sql), params).map_err(error)
    }

    /// Runs `f` inside `BEGIN` ... `COMMIT`, rolling back if it fails. (Should the plugin die
    /// mid-way, the host rolls back when the connection goes away.)
    fn transaction<T>(&self, f: impl FnOnce(&Self) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.execute("BEGIN", &[])?;
        match f(self) {
            Ok(value) => self.execute("COMMIT", &[]).map(|_| value),
            Err(e) => {
                let _ = self.execute("ROLLBACK", &[]);
                Err(e)
            }
        }
    }

    /// Whether `scope.user` owns `scope.session`; `lock` holds the row until the transaction
    /// ends, so the session cannot be deleted under a write.
    fn owns(&self, scope: &Scope, lock: bool) -> Result<bool, StoreError> {
        let sql = match lock {
            true => "SELECT 1 FROM {s}.sessions WHERE id = $1 AND user_id = $2 FOR SHARE",
            false => "SELECT 1 FROM {s}.sessions WHERE id = $1 AND user_id = $2",
        };
        Ok(!self.query(sql, &[text(&scope.session), text(&scope.user)])?.rows.is_empty())
    }

    /// Applies the missing migrations, one transaction under an advisory lock on the schema
    /// name, so two hosts starting at once neither race nor apply a step twice.
    fn migrate(&self) -> Result<(), StoreError> {
        self.transaction(|db| {
            db.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[text(&format!("codexcontinue:{}", db.schema.name()))],
            )?;
            db.execute("CREATE SCHEMA IF NOT EXISTS {s}", &[])?;
            db.execute(BOOKKEEPING, &[])?;
            let applied: Vec<u64> = db
                .query("SELECT version FROM {s}.schema_migrations", &[])?
                .rows
                .iter()
                .map(|r| rows::number(r, 0))
                .collect::<Result<_, _>>()?;
            for m in MIGRATIONS.iter().filter(|m| !applied.contains(&(m.version as u64))) {
                for statement in m.statements {
                    db.execute(statement, &[])?;
                }
                db.execute(
                    "INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)",
                    &[DbValue::Int32(m.version), text(m.name)],
                )?;
                codexcontinue_sdk::log::info(format!(
                    "schema {}: applied migration {} ({})",
                    db.schema.name(),
                    m.version,
                    m.name
                ));
            }
            Ok(())
        })
    }
}

const SESSION_COLUMNS: &str = "id, user_id, title, created_at_ms, updated_at_ms, message_count";

impl MemoryStore for PostgresMemory {
    fn init() -> Result<(), StoreError> {
        connect()?.migrate()
    }

    fn get_session(session: String) -> Result<Option<SessionInfo>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM {{s}}.sessions WHERE id = $1");
        connect()?.query(&sql, &[DbValue::Text(session)])?.rows.first().map(|r| rows::session(r)).transpose()
    }

    fn list_sessions(user: String, limit: u32) -> Result<Vec<SessionInfo>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM {{s}}.sessions WHERE user_id = $1 ORDER BY updated_at_ms DESC, id DESC LIMIT $2"
        );
        let found = connect()?.query(&sql, &[DbValue::Text(user), int8(limit.into())])?;
        found.rows.iter().map(|r| rows::session(r)).collect()
    }

    fn append(
        scope: Scope,
        messages: Vec<NewMessage>,
        title: Option<String>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let db = connect()?;
        let created = messages.first().map_or_else(now_ms, |m| m.created_at_ms);
        let updated = messages.iter().map(|m| m.created_at_ms).max().unwrap_or(0);
        db.transaction(|db| {
            db.execute(
                "INSERT INTO {s}.sessions (id, user_id, title, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, 0)
                 ON CONFLICT (id) DO NOTHING",
                &[text(&scope.session), text(&scope.user), opt(title), int8(created)],
            )?;
            // The row lock makes concurrent appends to this session take turns, each seeing the
            // last seq the one before it wrote.
            let found = db.query(
                "SELECT user_id, last_seq FROM {s}.sessions WHERE id = $1 FOR UPDATE",
                &[text(&scope.session)],
            )?;
            let row =
                found.rows.first().ok_or_else(|| StoreError::Conflict("the session was deleted meanwhile".into()))?;
            if rows::text(row, 0)? != scope.user {
                return Err(StoreError::Conflict(format!("session {} belongs to another user", scope.session)));
            }
            let last = rows::number(row, 1)?;
            let mut stored = Vec::with_capacity(messages.len());
            for (m, seq) in messages.into_iter().zip(last + 1..) {
                db.execute(
                    "INSERT INTO {s}.messages (session_id, seq, role, content, name, metadata, created_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        text(&scope.session),
                        int8(seq),
                        text(role_name(m.role)),
                        text(&m.content),
                        opt(m.name.clone()),
                        opt(m.metadata.clone()),
                        int8(m.created_at_ms),
                    ],
                )?;
                stored.push(StoredMessage::new(seq, m));
            }
            db.execute(
                "UPDATE {s}.sessions SET last_seq = $2, message_count = message_count + $3,
                 updated_at_ms = GREATEST(updated_at_ms, $4) WHERE id = $1",
                &[text(&scope.session), int8(last + stored.len() as u64), int8(stored.len() as u64), int8(updated)],
            )?;
            Ok(stored)
        })
    }

    fn list_messages(scope: Scope, before: Option<u64>, limit: u32) -> Result<Vec<StoredMessage>, StoreError> {
        let found = connect()?.query(
            "SELECT m.seq, m.role, m.content, m.name, m.metadata, m.created_at_ms
             FROM {s}.messages m JOIN {s}.sessions s ON s.id = m.session_id
             WHERE m.session_id = $1 AND s.user_id = $2 AND m.seq < $3
             ORDER BY m.seq DESC LIMIT $4",
            &[text(&scope.session), text(&scope.user), int8(before.unwrap_or(i64::MAX as u64)), int8(limit.into())],
        )?;
        let mut page: Vec<StoredMessage> = found.rows.iter().map(|r| rows::message(r)).collect::<Result<_, _>>()?;
        page.reverse();
        Ok(page)
    }

    fn delete_session(scope: Scope) -> Result<bool, StoreError> {
        // Messages, summary and embeddings go with the row (ON DELETE CASCADE).
        let deleted = connect()?.execute(
            "DELETE FROM {s}.sessions WHERE id = $1 AND user_id = $2",
            &[text(&scope.session), text(&scope.user)],
        )?;
        Ok(deleted > 0)
    }

    fn put_summary(scope: Scope, summary: Summary) -> Result<(), StoreError> {
        let written = connect()?.execute(
            "INSERT INTO {s}.summaries (session_id, text, through_seq, updated_at_ms)
             SELECT id, $3::text, $4::int8, $5::int8 FROM {s}.sessions WHERE id = $1 AND user_id = $2
             ON CONFLICT (session_id) DO UPDATE
             SET text = EXCLUDED.text, through_seq = EXCLUDED.through_seq, updated_at_ms = EXCLUDED.updated_at_ms
             WHERE {s}.summaries.through_seq <= EXCLUDED.through_seq",
            &[
                text(&scope.session),
                text(&scope.user),
                DbValue::Text(summary.text),
                int8(summary.through_seq),
                int8(summary.updated_at_ms),
            ],
        )?;
        if written > 0 || Self::get_summary(scope.clone())?.is_some() {
            // Not written only because the stored summary reaches further: kept, as it should.
            return Ok(());
        }
        Err(StoreError::Conflict(format!("no session {} for this user", scope.session)))
    }

    fn get_summary(scope: Scope) -> Result<Option<Summary>, StoreError> {
        let found = connect()?.query(
            "SELECT x.text, x.through_seq, x.updated_at_ms
             FROM {s}.summaries x JOIN {s}.sessions s ON s.id = x.session_id
             WHERE x.session_id = $1 AND s.user_id = $2",
            &[text(&scope.session), text(&scope.user)],
        )?;
        found.rows.first().map(|r| rows::summary(r)).transpose()
    }

    fn put_embeddings(scope: Scope, items: Vec<Embedding>) -> Result<(), StoreError> {
        connect()?.transaction(|db| {
            if !db.owns(&scope, true)? {
                return Err(StoreError::Conflict(format!("no session {} for this user", scope.session)));
            }
            for item in items {
                db.execute(
                    "INSERT INTO {s}.embeddings (session_id, seq, model, vector) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (session_id, seq, model) DO UPDATE SET vector = EXCLUDED.vector",
                    &[
                        text(&scope.session),
                        int8(item.seq),
                        DbValue::Text(item.model),
                        DbValue::Float32Array(item.vector),
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn list_embeddings(scope: Scope) -> Result<Vec<Embedding>, StoreError> {
        let db = connect()?;
        if !db.owns(&scope, false)? {
            return Ok(Vec::new());
        }
        let found = db.query(
            "SELECT seq, model, vector FROM {s}.embeddings WHERE session_id = $1 ORDER BY seq, model",
            &[text(&scope.session)],
        )?;
        found.rows.iter().map(|r| rows::embedding(r)).collect()
    }
}

/// Milliseconds since the Unix epoch, for sessions created without messages.
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

export_memory_store!(PostgresMemory);
