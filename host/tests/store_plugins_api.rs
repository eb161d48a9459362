//! The HTTP API over the memory plugins: a server started with `--store postgres-memory` or
//! `--store redis-memory` answers exactly like one on sled, and two servers sharing one Postgres
//! schema serve one another's conversations and facts (scale-out).

mod common;

use codexcontinue::config::{Config, StoreKind};
use common::databases::{self, unique};
use common::{Setup, TestServer};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn setup(store: StoreKind, env: Vec<(&'static str, String)>) -> Setup {
    let mut plugins = vec!["echo"];
    if let StoreKind::Plugin(id) = &store {
        plugins.push(if id == "redis-memory" { "redis-memory" } else { "postgres-memory" });
    }
    Setup { plugins, env, store, ..Setup::default() }
}

/// `value` with the session id, the user and timestamps replaced by placeholders, so runs
/// compare.
fn normalize(value: Value, session: &str, user: &str) -> Value {
    match value {
        Value::String(s) if OffsetDateTime::parse(&s, &Rfc3339).is_ok() => Value::String("<time>".into()),
        Value::String(s) => Value::String(s.replace(session, "<session>").replace(user, "<user>")),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| normalize(v, session, user)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                // Messages are embedded in the background: how many are done, whether any is
                // yet (and so whether a model is named) and whether that is still going on is
                // timing, not store.
                .map(|(k, v)| match k.as_str() {
                    "embedded_messages" => (k, Value::String("<count>".into())),
                    "embedding_model" => (k, Value::String("<timing>".into())),
                    "updating" => (k, Value::String("<timing>".into())),
                    _ => (k, normalize(v, session, user)),
                })
                .collect(),
        ),
        other => other,
    }
}

/// One conversation through every memory route, as (status, normalized body) per call.
async fn transcript(server: &TestServer) -> Vec<(u16, Value)> {
    let user = format!("ada-{}", uuid::Uuid::new_v4());
    let mut out = Vec::new();
    let (status, first) = server.chat("my name is Ada", json!({ "user_id": user })).await;
    assert_eq!(status, 200, "{first}");
    let session = first["session_id"].as_str().unwrap().to_string();
    out.push((status, first));
    out.push(server.chat("what is my name?", json!({ "user_id": user, "session_id": session })).await);
    out.push(server.chat("and again", json!({ "user_id": user, "session_id": session })).await);
    out.push(server.get(&format!("/memory/{session}?user_id={user}")).await);
    out.push(server.get(&format!("/memory/{session}?user_id={user}&limit=4")).await);
    out.push(server.get(&format!("/memory/{session}?user_id={user}&limit=4&before=3")).await);
    out.push(server.get(&format!("/sessions?user_id={user}")).await);
    // Another user sees nothing of it and cannot continue it.
    out.push(server.get(&format!("/memory/{session}?user_id=mallory")).await);
    out.push(server.chat("hijack", json!({ "user_id": "mallory", "session_id": session })).await);
    out.push(server.delete(&format!("/memory/{session}?user_id=mallory")).await);
    out.push(server.delete(&format!("/memory/{session}?user_id={user}")).await);
    out.push(server.get(&format!("/memory/{session}?user_id={user}")).await);
    out.push(server.delete(&format!("/memory/{session}?user_id={user}")).await);
    out.push(server.get(&format!("/sessions?user_id={user}")).await);
    out.into_iter().map(|(status, body)| (status, normalize(body, &session, &user))).collect()
}

/// Asserts that `plugin`'s transcript equals sled's, call by call.
async fn same_as_sled(plugin: &TestServer) {
    let sled = TestServer::start(setup(StoreKind::Sled, Vec::new())).await;
    let expected = transcript(&sled).await;
    sled.stop().await;
    let got = transcript(plugin).await;
    assert_eq!(got.len(), expected.len());
    for (i, (got, expected)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got, expected, "call {i} differs from sled");
    }
    // The transcript is the one intended: created, paged, isolated, deleted.
    let statuses: Vec<u16> = expected.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 404, 404, 404, 204, 404, 404, 200]);
}

/// `--store postgres-memory` serves chat, history, sessions and delete exactly like sled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_memory_serves_the_api_like_sled() {
    let schema = unique("api");
    let server =
        TestServer::start(setup(StoreKind::Plugin("postgres-memory".into()), databases::postgres_env(&schema))).await;
    let (_, status) = server.get("/status").await;
    assert_eq!(status["store"], "postgres-memory", "{status}");
    same_as_sled(&server).await;
    server.stop().await;
    databases::postgres_cleanup(&schema).await;
}

/// `--store redis-memory` serves chat, history, sessions and delete exactly like sled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_memory_serves_the_api_like_sled() {
    let prefix = unique("api");
    let server =
        TestServer::start(setup(StoreKind::Plugin("redis-memory".into()), databases::redis_env(&prefix))).await;
    same_as_sled(&server).await;
    server.stop().await;
    assert_eq!(databases::redis_keys(&prefix).await, Vec::<String>::new(), "the deleted session left keys behind");
    databases::redis_cleanup(&prefix).await;
}

/// Two servers on one database: a turn written through one is read and continued through the
/// other.
async fn two_servers_share_one_store(plugin: &str, env: Vec<(&'static str, String)>) {
    let a = TestServer::start(setup(StoreKind::Plugin(plugin.into()), env.clone())).await;
    let b = TestServer::start(setup(StoreKind::Plugin(plugin.into()), env)).await;
    let user = json!({ "user_id": "shared" });

    let (status, first) = a.chat("written on a", user.clone()).await;
    assert_eq!(status, 200, "{first}");
    let session = first["session_id"].as_str().unwrap().to_string();
    let (status, history) = b.get(&format!("/memory/{session}?user_id=shared")).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["messages"][0]["content"], "written on a");
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);

    let (status, second) = b.chat("continued on b", json!({ "user_id": "shared", "session_id": session })).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["message_id"], 4);
    assert!(second["reply"].as_str().unwrap().contains("2 earlier messages"), "{second}");
    let (_, history) = a.get(&format!("/memory/{session}?user_id=shared")).await;
    let contents: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents.len(), 4);
    assert_eq!(contents[2], "continued on b");
    let (_, sessions) = a.get("/sessions?user_id=shared").await;
    assert!(sessions.to_string().contains(&session), "{sessions}");

    assert_eq!(b.delete(&format!("/memory/{session}?user_id=shared")).await.0, 204);
    assert_eq!(a.get(&format!("/memory/{session}?user_id=shared")).await.0, 404);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_postgres_schema() {
    let schema = unique("scale");
    two_servers_share_one_store("postgres-memory", databases::postgres_env(&schema)).await;
    databases::postgres_cleanup(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_redis() {
    let prefix = unique("scale");
    two_servers_share_one_store("redis-memory", databases::redis_env(&prefix)).await;
    databases::redis_cleanup(&prefix).await;
}

/// A store plugin that is not loaded, or not a memory plugin, stops the server at start with a
/// message saying so.
#[tokio::test]
async fn a_missing_store_plugin_is_a_clear_startup_error() {
    let plugins = tempfile::TempDir::new().unwrap();
    let (manifest, wasm) = common::plugin("echo");
    std::fs::copy(manifest, plugins.path().join("echo.toml")).unwrap();
    std::fs::copy(wasm, plugins.path().join("echo.wasm")).unwrap();
    for (store, expected) in [("postgres-memory", "is not loaded"), ("echo", "not a memory plugin")] {
        let data = tempfile::TempDir::new().unwrap();
        let config = Config {
            data_dir: data.path().to_path_buf(),
            plugins_dir: plugins.path().to_path_buf(),
            store: StoreKind::Plugin(store.into()),
            cache_dir: Some(common::shared_cache()),
            ..Config::default()
        };
        let Err(e) = codexcontinue::start(config, Default::default()).await else { panic!("{store} was accepted") };
        let message = format!("{e:#}");
        assert!(message.contains(store) && message.contains(expected), "{message}");
    }
}

/// Facts on two servers over one database: a fact kept through one reaches a new chat on the
/// other, and one removed through the first never comes back on the second, even after its
/// slot is rewritten twice (a new incarnation each time, though the oldest fact kept is the
/// same, so the other server's cached index of that slot is dropped rather than caught up).
async fn facts_are_shared_and_removed_across_servers(plugin: &str, env: Vec<(&'static str, String)>) {
    let with_prompt = |env| {
        let mut setup = setup(StoreKind::Plugin(plugin.into()), env);
        setup.plugins.push("dummy");
        setup
    };
    let a = TestServer::start(with_prompt(env.clone())).await;
    let b = TestServer::start(with_prompt(env)).await;
    let stated = async |server: &TestServer| -> String {
        let (status, body) =
            server.chat("what do you know?", json!({ "user_id": "team", "model": "dummy/prompt" })).await;
        assert_eq!(status, 200, "{body}");
        // Only the facts section: earlier chats' echoed prompts may be recalled below it.
        let prompt = body["reply"].as_str().unwrap();
        let Some((_, facts)) = prompt.split_once("\nfacts the user has stated") else { return String::new() };
        facts.lines().skip(1).take_while(|l| l.starts_with("- ")).collect::<Vec<_>>().join("\n")
    };
    let keep = async |statement: &str| {
        let (status, body) = a.post("/memory/facts", json!({ "user_id": "team", "statement": statement })).await;
        assert_eq!(status, 201, "{body}");
    };

    keep("The staging region is eu-west-3.").await;
    let (_, listed) = b.get("/memory/facts?user_id=team").await;
    assert_eq!(listed["facts"][0]["id"], "staging-region", "{listed}");
    assert!(stated(&b).await.contains("the staging region is eu-west-3."));
    keep("The release owner is Ines.").await;
    assert!(stated(&b).await.contains("the release owner is ines."), "b catches up with a");

    assert_eq!(a.delete("/memory/facts/release-owner?user_id=team").await.0, 204);
    keep("The deploy window is Tuesday.").await;
    assert_eq!(a.delete("/memory/facts/deploy-window?user_id=team").await.0, 204);
    let on_b = stated(&b).await;
    assert!(on_b.contains("the staging region is eu-west-3."), "{on_b}");
    assert!(!on_b.contains("ines") && !on_b.contains("tuesday"), "removed facts came back on b: {on_b}");
    let (_, listed) = b.get("/memory/facts?user_id=team").await;
    assert_eq!(listed["facts"].as_array().unwrap().len(), 1, "{listed}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_are_shared_and_removed_across_postgres_servers() {
    let schema = unique("facts");
    facts_are_shared_and_removed_across_servers("postgres-memory", databases::postgres_env(&schema)).await;
    databases::postgres_cleanup(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_are_shared_and_removed_across_redis_servers() {
    let prefix = unique("facts");
    facts_are_shared_and_removed_across_servers("redis-memory", databases::redis_env(&prefix)).await;
    databases::redis_cleanup(&prefix).await;
}
