//! `just bench`: the memory layer on its own. Append and history-read latency for sessions of
//! 10, 1 000 and 100 000 messages on each built-in store, prompt assembly with recall on a
//! 10 000-message session, and what the recall index costs in memory. Prints markdown.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use codexcontinue::config::{Env, MemoryConfig};
use codexcontinue::memory::Found;
use codexcontinue::memory::{History, Input, Memory, Model, PromptRequest, Turn};
use codexcontinue::plugins::{Loader, Registry, Rollout};
use codexcontinue::runtime::{PoolConfig, Runtime, RuntimeConfig};
use codexcontinue::store::{Embedding, NewMessage, PluginStore, Role, Scope, SledStore, Store};
use support::{quantile, root, rss_mib};

/// A model with no embeddings, so recall runs BM25 and no network is involved.
struct Offline;

#[async_trait]
impl Model for Offline {
    async fn complete(&self, _: &str, _: &str) -> Result<String, String> {
        Ok("summary".into())
    }
    async fn embed(
        &self,
        _: Vec<String>,
        _: codexcontinue::memory::Purpose,
    ) -> Result<Option<(String, Vec<Vec<f32>>)>, String> {
        Ok(None)
    }
}

/// A model whose embeddings are a cheap hash of the words (256 dimensions), so recall runs its
/// embedding path and fusion without a network.
struct Hashed;

const DIMENSIONS: usize = 256;

fn hashed(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; DIMENSIONS];
    for word in text.split_whitespace() {
        let h = word.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
        v[(h % DIMENSIONS as u64) as usize] += 1.0;
    }
    v
}

#[async_trait]
impl Model for Hashed {
    async fn complete(&self, _: &str, _: &str) -> Result<String, String> {
        Ok("summary".into())
    }
    async fn embed(
        &self,
        texts: Vec<String>,
        _: codexcontinue::memory::Purpose,
    ) -> Result<Option<(String, Vec<Vec<f32>>)>, String> {
        Ok(Some(("hashed".into(), texts.iter().map(|t| hashed(t)).collect())))
    }
}

/// p50 and p99 of `samples`, in microseconds.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!("{:.0} | {:.0}", quantile(&samples, 0.5, 1e6), quantile(&samples, 0.99, 1e6))
}

const TOPICS: &[&str] =
    &["database", "deploy", "lunch", "review", "latency", "budget", "schema", "tests", "release", "oncall"];

/// Message `i` of a synthetic conversation: varied enough for BM25 to have work to do.
fn message(i: usize) -> NewMessage {
    let topic = TOPICS[i % TOPICS.len()];
    let role = if i.is_multiple_of(2) { Role::User } else { Role::Assistant };
    let content = format!(
        "Message {i} about the {topic}: we discussed option {} and agreed to revisit the {topic} plan next week.",
        i % 97
    );
    NewMessage { role, content, name: None, metadata: None, created_at_ms: 1_700_000_000_000 + i as u64 }
}

async fn fill(store: &dyn Store, scope: &Scope, n: usize) {
    for start in (0..n).step_by(1000) {
        store.append(scope, (start..n.min(start + 1000)).map(message).collect(), None).await.unwrap();
    }
}

/// A unique Redis key prefix and Postgres schema for this run, removed at the end.
fn unique() -> String {
    format!("cc_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A memory plugin staged through the real runtime, as `--store <id>` uses it.
async fn plugin_store(id: &str, env: Vec<(&str, String)>) -> Arc<dyn Store> {
    let root = root();
    let cache = Some(root.join("target/test-plugin-cache"));
    let runtime = Runtime::new(RuntimeConfig { pool: PoolConfig::default(), cache_dir: cache }).unwrap();
    let loader = Loader::new(runtime, Arc::new(env.into_iter().collect::<Env>()), 512);
    let manifest = root.join(format!("plugins/{id}/{id}.toml"));
    let staged = loader.stage(&manifest).await.unwrap_or_else(|e| panic!("{e} (run `cargo xtask build-plugins`)"));
    let registry = Arc::new(Registry::default());
    registry.install(staged, Rollout::default());
    Arc::new(PluginStore::new(id, registry))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench --bench memory -- per-turn` runs only the per-turn table.
    if std::env::args().skip(1).any(|a| a == "per-turn") {
        return per_turn_by_length().await;
    }
    let namespace = unique();
    println!(
        "## Store latency (µs, 200 samples each)\n\n| store | messages in session | append one turn p50 | p99 | read newest 100 p50 | p99 |\n|---|---|---|---|---|---|"
    );
    for name in ["memory", "sled", "redis-memory", "postgres-memory"] {
        for size in [10, 1_000, 100_000] {
            let dir = tempfile::tempdir().unwrap();
            let redis =
                vec![("REDIS_URL", "redis://127.0.0.1:6379".into()), ("CODEXCONTINUE_REDIS_PREFIX", namespace.clone())];
            let pg = vec![
                ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test".into()),
                ("CODEXCONTINUE_PG_SCHEMA", namespace.clone()),
            ];
            let store: Arc<dyn Store> = match name {
                "sled" => Arc::new(SledStore::open(dir.path()).unwrap()),
                "memory" => Arc::new(SledStore::temporary().unwrap()),
                "redis-memory" => plugin_store(name, redis).await,
                _ => plugin_store(name, pg).await,
            };
            let scope = Scope::new("bench", format!("s{size}"));
            fill(store.as_ref(), &scope, size).await;
            let mut appends = Vec::new();
            for i in 0..200 {
                let started = Instant::now();
                store.append(&scope, vec![message(size + 2 * i), message(size + 2 * i + 1)], None).await.unwrap();
                appends.push(started.elapsed());
            }
            let mut reads = Vec::new();
            for _ in 0..200 {
                let started = Instant::now();
                assert_eq!(store.list_messages(&scope, None, 100).await.unwrap().len(), 100.min(size + 400));
                reads.push(started.elapsed());
            }
            println!("| {name} | {size} | {} | {} |", summary(appends), summary(reads));
        }
    }

    // Prompt assembly on a long session: window, summary lookup and BM25 recall.
    let store: Arc<dyn Store> = Arc::new(SledStore::open(tempfile::tempdir().unwrap().keep().as_path()).unwrap());
    let scope = Scope::new("bench", "long");
    fill(store.as_ref(), &scope, 10_000).await;
    let before = rss_mib();
    let memory = Memory::new(store.clone(), MemoryConfig::default());
    let request = |message| PromptRequest {
        scope: &scope,
        existing: true,
        system: Some("be brief"),
        message,
        budget: 12_000,
        workspace: None,
        history: History::Stored,
        stored: true,
    };
    let started = Instant::now();
    let first = memory.prompt(request("what did we agree about the database schema?"), &Offline).await.unwrap();
    let cold = started.elapsed();
    let after = rss_mib();
    let mut warm = Vec::new();
    for i in 0..300u32 {
        let started = Instant::now();
        let prompt = memory
            .prompt(
                request(if i.is_multiple_of(2) {
                    "what about the deploy budget?"
                } else {
                    "remind me of the oncall release plan"
                }),
                &Offline,
            )
            .await
            .unwrap();
        warm.push(started.elapsed());
        assert!(prompt.recalled > 0);
    }
    println!("\n## Prompt assembly, 10 000-message session on sled (recall by BM25)\n");
    println!("| step | µs |\n|---|---|\n| first prompt (builds the recall index) | {:.0} |", cold.as_secs_f64() * 1e6);
    let warm = summary(warm);
    let (p50, p99) = warm.split_once(" | ").unwrap();
    println!("| later prompts, p50 | {p50} |\n| later prompts, p99 | {p99} |");
    println!(
        "\nRecalled {} messages into the first prompt; the index of 10 000 messages grew RSS by {:.0} MiB.",
        first.recalled,
        after - before
    );

    // A whole turn's memory work on the same session: prompt, then the durable append.
    let mut turns = Vec::new();
    for i in 0..200 {
        let started = Instant::now();
        memory.prompt(request("what about the deploy budget?"), &Offline).await.unwrap();
        let input = vec![Input::user(format!("question {i}"))];
        let turn = Turn { input, reply: format!("answer {i}"), metadata: serde_json::json!({}) };
        memory.record(&scope, turn, None).await.unwrap();
        turns.push(started.elapsed());
    }
    println!(
        "\n## Memory's share of one chat turn (prompt + durable append), 10 000-message session on sled, µs\n\n| p50 | p99 |\n|---|---|\n| {} |",
        summary(turns)
    );

    per_turn_by_length().await;

    // Leave nothing behind in the shared databases.
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{namespace}:*")).query_async(&mut redis).await.unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut redis).await.unwrap();
    }
    let (pg, connection) =
        tokio_postgres::connect("postgres://postgres@127.0.0.1:5432/test", tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    pg.batch_execute(&format!("DROP SCHEMA IF EXISTS {namespace} CASCADE")).await.unwrap();
}

/// Memory's share of a turn (prompt, then the durable append) as the session grows, for a user
/// with 20 other chats of 50 messages and 10 facts, by BM25 alone and with embeddings (every
/// message has a vector). p50 and p99 in µs over 500 turns each. The six setups take turns in
/// rotation, so a slow spell of this noisy machine falls on all of them alike and their ratios
/// hold.
async fn per_turn_by_length() {
    println!(
        "\n## Memory's share of a turn by session length (sled; 20 other chats, 10 facts), µs\n\n| messages in session | BM25 p50 | p99 | with embeddings p50 | p99 |\n|---|---|---|---|---|"
    );
    const SIZES: [usize; 3] = [10, 1_000, 10_000];
    let mut setups = Vec::new();
    for size in SIZES {
        for embeddings in [false, true] {
            setups.push(TurnSetup::new(size, embeddings).await);
        }
    }
    let mut turns = vec![Vec::new(); setups.len()];
    for i in 0..520 {
        for (setup, turns) in setups.iter().zip(&mut turns) {
            let took = setup.turn(i).await;
            // The first turns build the indexes: not a steady turn.
            if i >= 20 {
                turns.push(took);
            }
        }
    }
    let mut turns = turns.into_iter();
    for size in SIZES {
        let (bm25, embeddings) = (turns.next().unwrap(), turns.next().unwrap());
        println!("| {size} | {} | {} |", summary(bm25), summary(embeddings));
    }
}

/// One setup of [`per_turn_by_length`]: a session of `size` messages on its own store.
struct TurnSetup {
    memory: Memory,
    embeddings: bool,
    _dir: tempfile::TempDir,
}

impl TurnSetup {
    async fn new(size: usize, embeddings: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let scopes: Vec<Scope> = std::iter::once(Scope::new("bench", "long"))
            .chain((0..20).map(|i| Scope::new("bench", format!("other-{i}"))))
            .collect();
        for (i, scope) in scopes.iter().enumerate() {
            let n = if i == 0 { size } else { 50 };
            fill(store.as_ref(), scope, n).await;
            if embeddings {
                let vectors = (1..=n as u64)
                    .map(|seq| Embedding {
                        seq,
                        model: "hashed".into(),
                        vector: hashed(&message(seq as usize - 1).content),
                    })
                    .collect();
                let session = store.get_session(&scope.user, &scope.session).await.unwrap().unwrap();
                store.put_embeddings(&Scope::of(&session), vectors).await.unwrap();
            }
        }
        // Embedding in the background is not what is measured: turns record without a model.
        let config = MemoryConfig { embeddings: false, summaries: false, ..MemoryConfig::default() };
        let memory = Memory::new(store.clone(), config);
        let facts = (0..10).map(|i| Found::new(&format!("The {} owner is person {i}", TOPICS[i]))).collect();
        memory.remember("bench", facts, None, None).await.unwrap();
        Self { memory, embeddings, _dir: dir }
    }

    /// Turn `i` on the long session: the prompt, then recording question and answer.
    async fn turn(&self, i: usize) -> Duration {
        let model: &dyn Model = if self.embeddings { &Hashed } else { &Offline };
        let scope = &Scope::new("bench", "long");
        let message = format!("what did we agree about the {} plan?", TOPICS[i % TOPICS.len()]);
        let started = Instant::now();
        let request = PromptRequest {
            scope,
            existing: true,
            system: Some("be brief"),
            message: &message,
            budget: 12_000,
            workspace: None,
            history: History::Stored,
            stored: true,
        };
        self.memory.prompt(request, model).await.unwrap();
        let turn = Turn {
            input: vec![Input::user(message.clone())],
            reply: format!("answer {i}"),
            metadata: serde_json::json!({}),
        };
        let live = Scope::of(&self.memory.session("bench", "long").await.unwrap());
        self.memory.record(&live, turn, None).await.unwrap();
        started.elapsed()
    }
}
