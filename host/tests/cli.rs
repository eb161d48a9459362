//! The `codexcontinue` binary as operators run it: `serve` keeps acknowledged turns across a
//! `kill -9`, `plugins validate|list` report problems with file, step and field, `--version`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{plugin, shared_cache};
use serde_json::json;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codexcontinue"));
    // Keep the developer's own .env and config file out of the tests.
    command
        .current_dir(std::env::temp_dir())
        .env("CODEXCONTINUE_CONFIG", "/nonexistent/codexcontinue.toml")
        .env_remove("OPENAI_API_KEY");
    command
}

/// Starts `serve` on an ephemeral port and returns the child and its base URL.
fn serve(data: &Path, plugins: &Path) -> (Child, String) {
    serve_with(binary(), data, plugins, &[])
}

fn serve_with(mut command: Command, data: &Path, plugins: &Path, flags: &[&str]) -> (Child, String) {
    let mut child = command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(flags)
        .arg("--data-dir")
        .arg(data)
        .arg("--plugins-dir")
        .arg(plugins)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(url) = line.split("listening on ").nth(1) {
            let url = url.trim().to_string();
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, url);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server exited before listening");
}

fn plugins_dir(dir: &Path) {
    let (manifest, wasm) = plugin("echo");
    std::fs::copy(manifest, dir.join("echo.toml")).unwrap();
    std::fs::copy(wasm, dir.join("echo.wasm")).unwrap();
}

/// A reply the client has received is on disk: SIGKILL right after it loses nothing.
#[tokio::test]
async fn acknowledged_turns_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    plugins_dir(plugins.path());
    let client = reqwest::Client::new();

    let (mut child, url) = serve(data.path(), plugins.path());
    let mut session = serde_json::Value::Null;
    for i in 0..5 {
        let body = json!({ "message": format!("turn {i}"), "session_id": session });
        let body = if i == 0 { json!({ "message": "turn 0" }) } else { body };
        let (status, reply) =
            common::response(client.post(format!("{url}/chat")).json(&body).send().await.unwrap()).await;
        assert_eq!(status, 200, "{reply}");
        session = reply["session_id"].clone();
    }
    // Concurrent turns share flushes (group commit); each is still durable once answered.
    let concurrent = (0..16).map(|i| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let body = json!({ "message": format!("concurrent {i}") });
            let (status, reply) =
                common::response(client.post(format!("{url}/chat")).json(&body).send().await.unwrap()).await;
            assert_eq!(status, 200, "{reply}");
            (i, reply["session_id"].as_str().unwrap().to_string())
        }
    });
    let concurrent = futures::future::join_all(concurrent).await;
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush on exit
    child.wait().unwrap();

    let (mut child, url) = serve(data.path(), plugins.path());
    let session = session.as_str().unwrap();
    let (status, history) = common::response(client.get(format!("{url}/memory/{session}")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{history}");
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 10);
    assert_eq!(messages[8]["content"], "turn 4");
    for (i, session) in concurrent {
        let (status, history) =
            common::response(client.get(format!("{url}/memory/{session}")).send().await.unwrap()).await;
        assert_eq!(status, 200, "{history}");
        assert_eq!(history["messages"][0]["content"], format!("concurrent {i}"), "{history}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `plugins validate` accepts a good plugin and names the file, step and field of a bad one.
#[test]
fn plugins_validate_reports_file_step_and_field() {
    let dir = tempfile::tempdir().unwrap();
    plugins_dir(dir.path());
    let cache = shared_cache();
    let run = |file: &Path| {
        let out = binary().args(["plugins", "validate"]).arg(file).arg("--data-dir").arg(&cache).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = run(&dir.path().join("echo.wasm"));
    assert!(ok, "{text}");
    assert!(text.contains("ok: echo@0.1.0 is a provider plugin"), "{text}");

    let manifest = dir.path().join("echo.toml");
    let good = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, good.replace("max_concurrency = 64", "max_concurrency = 0")).unwrap();
    let (ok, text) = run(&manifest);
    assert!(!ok);
    assert!(
        text.contains("echo.toml") && text.contains("manifest failed") && text.contains("limits.max_concurrency"),
        "{text}"
    );
}

/// `plugins list` shows loaded and failed plugins and exits non-zero when one failed.
#[test]
fn plugins_list_shows_every_plugin() {
    let dir = tempfile::tempdir().unwrap();
    plugins_dir(dir.path());
    std::fs::write(
        dir.path().join("half.toml"),
        "id = \"half\"\nversion = \"0.1.0\"\nkind = \"provider\"\nwit = \"0.1.0\"\n",
    )
    .unwrap();
    let out = binary()
        .args(["plugins", "list", "--plugins-dir"])
        .arg(dir.path())
        .arg("--data-dir")
        .arg(shared_cache())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.lines().any(|l| l.starts_with("echo") && l.contains("ok") && l.contains("default model echo")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("half") && l.contains("failed") && l.contains("half.wasm")), "{text}");
}

/// Listing loads a memory plugin without running its `init()`: no connection to its database,
/// let alone a migration (a listing must not create schemas on a shared Postgres).
#[tokio::test]
async fn plugins_list_does_not_touch_databases() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, wasm) = plugin("postgres-memory");
    std::fs::copy(manifest, dir.path().join("postgres-memory.toml")).unwrap();
    std::fs::copy(wasm, dir.path().join("postgres-memory.wasm")).unwrap();
    let schema = common::databases::unique("list");
    let out = binary()
        .args(["plugins", "list", "--plugins-dir"])
        .arg(dir.path())
        .arg("--data-dir")
        .arg(shared_cache())
        .envs(common::databases::postgres_env(&schema))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.lines().any(|l| l.starts_with("postgres-memory") && l.contains("ok")), "{text}");
    let client = common::databases::postgres().await;
    let sql = "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1";
    let count: i64 = client.query_one(sql, &[&schema]).await.unwrap().get(0);
    assert_eq!(count, 0, "plugins list migrated the database");
}

/// `--version` prints the crate version.
#[test]
fn version_flag() {
    let out = binary().arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("codexcontinue {}", env!("CARGO_PKG_VERSION")));
}

/// Flags beat the environment, which beats `.env`, which beats `codexcontinue.toml`.
#[tokio::test]
async fn configuration_precedence() {
    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    plugins_dir(plugins.path());
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("codexcontinue.toml"), "[limits]\nmax_message_chars = 10\n").unwrap();
    let client = reqwest::Client::new();
    // The longest message each configuration accepts.
    let longest = async |mut command: Command, flags: &[&str]| {
        command.current_dir(cwd.path()).env_remove("CODEXCONTINUE_CONFIG");
        let (mut child, url) = serve_with(command, data.path(), plugins.path(), flags);
        let mut longest = 0;
        for n in 1..=12 {
            let body = json!({ "message": "x".repeat(n) });
            if client.post(format!("{url}/chat")).json(&body).send().await.unwrap().status() == 200 {
                longest = n;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        longest
    };
    assert_eq!(longest(binary(), &[]).await, 10, "from codexcontinue.toml");
    std::fs::write(cwd.path().join(".env"), "CODEXCONTINUE_MAX_MESSAGE_CHARS=8\n").unwrap();
    assert_eq!(longest(binary(), &[]).await, 8, ".env over the file");
    let mut command = binary();
    command.env("CODEXCONTINUE_MAX_MESSAGE_CHARS", "6");
    assert_eq!(longest(command, &[]).await, 6, "environment over .env");
    let mut command = binary();
    command.env("CODEXCONTINUE_MAX_MESSAGE_CHARS", "6");
    assert_eq!(longest(command, &["--max-message-chars=4"]).await, 4, "flag over environment");
}

/// `export` writes a user's memory as JSONL and `import` loads it into another store, where
/// the API serves it unchanged; a second import skips what exists.
#[tokio::test]
async fn export_and_import_move_memory_between_stores() {
    let (source, target) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plugins = tempfile::tempdir().unwrap();
    plugins_dir(plugins.path());
    let client = reqwest::Client::new();
    let (mut child, url) = serve(source.path(), plugins.path());
    let (_, first) = common::response(
        client.post(format!("{url}/chat")).json(&json!({ "message": "remember: blue" })).send().await.unwrap(),
    )
    .await;
    let session = first["session_id"].as_str().unwrap().to_string();
    client
        .post(format!("{url}/chat"))
        .json(&json!({ "message": "and green", "session_id": session }))
        .send()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let export = source.path().join("ada.jsonl");
    let run = |args: &[&str], data: &Path| {
        let out =
            binary().args(args).arg("--data-dir").arg(data).arg("--plugins-dir").arg(plugins.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = run(&["export", "--user", "default", "--out", export.to_str().unwrap()], source.path());
    assert!(said.contains("exported 1 sessions, 4 messages"), "{said}");
    let lines = std::fs::read_to_string(&export).unwrap();
    let of_type = |t: &str| lines.lines().filter(|l| l.contains(&format!("\"type\":\"{t}\""))).count();
    assert!(lines.lines().next().unwrap().contains("\"type\":\"session\""));
    assert_eq!((of_type("session"), of_type("message")), (1, 4));
    // The echo demo embeds messages in the background; the export carries whatever was done.
    assert!(of_type("embedding") <= 4);

    let said = run(&["import", export.to_str().unwrap()], target.path());
    assert!(said.contains("imported 1 sessions, 4 messages"), "{said}");
    let said = run(&["import", export.to_str().unwrap()], target.path());
    assert!(said.contains("skipped 1 sessions"), "{said}");

    let (mut child, url) = serve(target.path(), plugins.path());
    let (status, history) = common::response(client.get(format!("{url}/memory/{session}")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{history}");
    let contents: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents[0], "remember: blue");
    assert_eq!(contents[2], "and green");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `plugins inspect` shows interfaces, grants after environment overrides, limits and rollout.
#[test]
fn plugins_inspect_shows_interfaces_and_grants() {
    let (manifest, _) = plugin("dummy");
    let dir = tempfile::tempdir().unwrap();
    let custom = common::plugin_with("dummy", |m| m);
    std::fs::write(dir.path().join("dummy.toml"), &custom.1).unwrap();
    std::fs::write(dir.path().join("dummy.wasm"), &custom.2).unwrap();
    let out = binary()
        .args(["plugins", "inspect"])
        .arg(dir.path().join("dummy.wasm"))
        .arg("--data-dir")
        .arg(shared_cache())
        .env("DUMMY_BASE_URL", "http://127.0.0.1:9999")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("plugin    dummy@0.1.0 (provider, WIT 0.2.0)"), "{text}");
    assert!(text.contains("exports   codexcontinue:plugin/provider@0.2.0"), "{text}");
    assert!(text.contains("egress    http://127.0.0.1:9999"), "{text}");
    assert!(text.contains("config    base_url = http://127.0.0.1:9999 (from DUMMY_BASE_URL)"), "{text}");
    assert!(text.contains("limits    memory 64 MiB, timeout 3000 ms, cpu 500 ms, 4 calls at once"), "{text}");
    assert!(manifest.exists());
}

/// `keys new` prints an entry that `serve` accepts from `.env`; a malformed key list stops
/// `serve` with an error that names the entry but not the key.
#[tokio::test]
async fn keys_new_entries_work_and_bad_keys_stop_serve() {
    let out = binary().args(["keys", "new", "carol"]).output().unwrap();
    assert!(out.status.success());
    let entry = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let key = entry.strip_prefix("carol:cc-").unwrap_or_else(|| panic!("{entry}"));
    assert_eq!(key.len(), 64);

    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    plugins_dir(plugins.path());
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join(".env"), format!("CODEXCONTINUE_API_KEYS={entry}\n")).unwrap();
    let mut command = binary();
    command.current_dir(cwd.path());
    let (mut child, url) = serve_with(command, data.path(), plugins.path(), &[]);
    let client = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(client.get(format!("{url}/sessions")).send().await.unwrap()), 401);
    let ok = client.get(format!("{url}/sessions")).bearer_auth(entry.split_once(':').unwrap().1).send().await;
    assert_eq!(status(ok.unwrap()), 200);
    child.kill().unwrap();
    child.wait().unwrap();

    let out = binary()
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("CODEXCONTINUE_API_KEYS", "dave:sk-too-short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the key of \"dave\" must be at least 16 characters"), "{stderr}");
    assert!(!stderr.contains("sk-too-short"), "{stderr}");
}

/// `healthcheck` exits 0 against a serving server (by `--url`, or by the bind address as the
/// container sets it), and 1 with a reason for a wrong path or a stopped server.
#[tokio::test]
async fn healthcheck_exits_by_the_servers_health() {
    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    plugins_dir(plugins.path());
    let (mut child, url) = serve(data.path(), plugins.path());
    let check = |command: &mut Command| {
        let out = command.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };

    let (code, text) = check(binary().args(["healthcheck", "--url", &url]));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("ok: {url}/healthz")), "{text}");
    // As in the image: CODEXCONTINUE_BIND=0.0.0.0:<port>, no flags.
    let port = url.rsplit(':').next().unwrap();
    let (code, text) = check(binary().arg("healthcheck").env("CODEXCONTINUE_BIND", format!("0.0.0.0:{port}")));
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = check(binary().args(["healthcheck", "--url", &format!("{url}/nowhere")]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("answered 404"), "{text}");

    child.kill().unwrap();
    child.wait().unwrap();
    let (code, text) = check(binary().args(["healthcheck", "--url", &url]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("unhealthy") && text.contains("/healthz"), "{text}");
}
