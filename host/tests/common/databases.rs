//! Test support for the memory plugins: the local Redis and Postgres (127.0.0.1, trust auth,
//! database `test`), unique key prefixes and schemas so runs never collide, staging a memory
//! plugin through the real runtime, and looking into the databases directly.

use std::sync::Arc;

use codexcontinue::config::Env;
use codexcontinue::plugins::{Loader, Registry, Rollout};
use codexcontinue::runtime::{PoolConfig, Runtime, RuntimeConfig};
use codexcontinue::store::{PluginStore, Store};

use super::{plugin, shared_cache};

/// The Redis every test uses.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// The Postgres database every test uses.
pub const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A name no other run uses: `cc_{tag}_{random}`, valid as a key prefix and a schema name.
pub fn unique(tag: &str) -> String {
    format!("cc_{tag}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// The environment that points `redis-memory` at the test Redis under `prefix`.
pub fn redis_env(prefix: &str) -> Vec<(&'static str, String)> {
    vec![("REDIS_URL", REDIS_URL.to_string()), ("CODEXCONTINUE_REDIS_PREFIX", prefix.to_string())]
}

/// The environment that points `postgres-memory` at the test database in `schema`.
pub fn postgres_env(schema: &str) -> Vec<(&'static str, String)> {
    vec![("DATABASE_URL", DATABASE_URL.to_string()), ("CODEXCONTINUE_PG_SCHEMA", schema.to_string())]
}

/// A runtime sized for tests, sharing the compile cache with the other test binaries.
pub fn runtime() -> Runtime {
    let pool = PoolConfig { instances: 64, max_memory_mb: 128 };
    Runtime::new(RuntimeConfig { pool, cache_dir: Some(shared_cache()) }).expect("runtime")
}

/// Stages the built memory plugin `id` with `env` (its `init()` runs: connect, migrate) and
/// returns the store over it, as `--store <id>` does.
pub async fn plugin_store(id: &str, env: Vec<(&'static str, String)>) -> Arc<dyn Store> {
    Arc::new(PluginStore::new(id, plugin_registry(id, env).await))
}

/// A registry holding just the memory plugin `id`, staged with `env`.
pub async fn plugin_registry(id: &str, env: Vec<(&'static str, String)>) -> Arc<Registry> {
    let loader = Loader::new(runtime(), Arc::new(env.into_iter().collect::<Env>()), 128);
    let staged = loader.stage(&plugin(id).0).await.unwrap_or_else(|e| panic!("staging {id}: {e}"));
    let registry = Arc::new(Registry::default());
    assert!(registry.install(staged, Rollout::default()));
    registry
}

/// A connection to the test Redis.
pub async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL).unwrap().get_multiplexed_async_connection().await.expect("the test Redis")
}

/// Every key under `prefix`.
pub async fn redis_keys(prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut redis().await).await.unwrap();
    keys.sort();
    keys
}

/// Deletes every key under `prefix`.
pub async fn redis_cleanup(prefix: &str) {
    let keys = redis_keys(prefix).await;
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut redis().await).await.unwrap();
    }
}

/// A client of the test database.
pub async fn postgres() -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(DATABASE_URL, tokio_postgres::NoTls).await.expect("the test Postgres");
    tokio::spawn(connection);
    client
}

/// Drops `schema` and everything in it.
pub async fn postgres_cleanup(schema: &str) {
    postgres().await.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).await.unwrap();
}

/// Rows of `session` (any user's) left in each table of `schema`, as `table: count` for the non-empty ones.
pub async fn postgres_leftovers(schema: &str, session: &str) -> Vec<String> {
    let client = postgres().await;
    let mut left = Vec::new();
    for (table, column) in
        [("sessions", "id"), ("messages", "session_id"), ("summaries", "session_id"), ("embeddings", "session_id")]
    {
        // The host keys sessions as `user/id`.
        let sql = format!("SELECT count(*) FROM \"{schema}\".{table} WHERE strpos({column}, $1) > 0");
        let count: i64 = client.query_one(&sql, &[&session]).await.unwrap().get(0);
        if count > 0 {
            left.push(format!("{table}: {count}"));
        }
    }
    left
}
