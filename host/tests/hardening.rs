//! Operator-facing hardening: the admin token's strength rule, `/status` without server paths
//! for anyone but the admin, and `codexcontinue compact` scrubbing deleted data from disk.

mod common;

use std::path::Path;
use std::process::Command;

use codexcontinue::auth::ApiKeys;
use codexcontinue::config::Config;
use codexcontinue::store::{NewMessage, Role, Scope, SledStore, Store as _};
use common::{Setup, TestServer, error_code};

const ADMIN: &str = "admin-7f3c9a1e5b2d4c60";

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codexcontinue"));
    command.current_dir(std::env::temp_dir()).env("CODEXCONTINUE_CONFIG", "/nonexistent/codexcontinue.toml");
    command
}

/// A short or repetitive admin token stops `serve` at startup with a message naming the rule
/// and the variable, never the token.
#[test]
fn weak_admin_tokens_stop_serve() {
    let data = tempfile::tempdir().unwrap();
    for (token, expected) in [("a", "at least 16 characters"), ("zzzzzzzzzzzzzzzzzzzzzzzz", "too few characters")] {
        let out = binary()
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env("CODEXCONTINUE_ADMIN_TOKEN", token)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("CODEXCONTINUE_ADMIN_TOKEN") && stderr.contains(expected), "{stderr}");
        assert!(token.len() < 4 || !stderr.contains(token), "{stderr}");
    }
}

/// `/status` shows manifest paths, and error messages with server paths, only to the admin;
/// with client keys on, it needs a key or the admin token.
#[tokio::test]
async fn status_paths_are_for_the_admin_only() {
    let (manifest, wasm) = common::plugin("dummy");
    let manifest =
        common::without_env(&std::fs::read_to_string(manifest).unwrap()).replace("id = \"dummy\"", "id = \"broken\"");
    let server = TestServer::start(Setup {
        custom: vec![("broken".into(), manifest, std::fs::read(wasm).unwrap())],
        configure: |c: &mut Config| {
            c.watch = false;
            c.admin_token = Some(ADMIN.into());
            c.api_keys = ApiKeys::parse("alice:sk-alice-0123456789").unwrap();
        },
        ..Setup::default()
    })
    .await;
    // A failed reload leaves an error that quotes the missing file's path.
    std::fs::remove_file(server.plugins_dir.join("broken.wasm")).unwrap();
    let reload = server.client.post(server.url("/admin/plugins/reload")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(reload.status(), 200);

    let status = |token: Option<&'static str>| {
        let request = server.client.get(server.url("/status"));
        let request = match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        async move { common::response(request.send().await.unwrap()).await }
    };
    let (code, body) = status(None).await;
    assert_eq!((code, error_code(&body)), (401, "missing_api_key"));

    let dir = server.plugins_dir.display().to_string();
    let (code, plain) = status(Some("sk-alice-0123456789")).await;
    assert_eq!(code, 200, "{plain}");
    let broken = plain["plugins"].as_array().unwrap().iter().find(|p| p["id"] == "broken").unwrap().clone();
    let message = broken["last_error"]["message"].as_str().unwrap_or_else(|| panic!("{broken}"));
    assert!(message.contains("broken.wasm"), "{message}");
    assert!(!plain.to_string().contains(&dir), "a path in the plain view: {plain}");
    assert!(plain["plugins"].as_array().unwrap().iter().all(|p| p.get("file").is_none()), "{plain}");

    let (code, admin) = status(Some(ADMIN)).await;
    assert_eq!(code, 200, "{admin}");
    let broken = admin["plugins"].as_array().unwrap().iter().find(|p| p["id"] == "broken").unwrap().clone();
    assert!(broken["file"].as_str().unwrap().starts_with(&dir), "{broken}");
    assert!(broken["last_error"]["message"].as_str().unwrap().contains(&dir), "{broken}");
    server.stop().await;
}

/// Whether any file under `dir` holds `needle`.
fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            return files_contain(&path, needle);
        }
        let bytes = std::fs::read(&path).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

/// A deleted conversation stays in sled's files until `codexcontinue compact` rewrites them;
/// after it, the deleted text is nowhere on disk and the rest of the store is intact.
#[tokio::test]
async fn compact_scrubs_deleted_data_from_disk() {
    const SECRET: &str = "zebra-cobalt-secret-4711";
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("store");
    let message = |content: &str| NewMessage {
        role: Role::User,
        content: content.into(),
        name: None,
        metadata: None,
        created_at_ms: 1,
    };
    {
        let store = SledStore::open(&dir).unwrap();
        let (gone, kept) = (Scope::new("alice", "s-gone"), Scope::new("alice", "s-kept"));
        for i in 0..20 {
            store.append(&gone, vec![message(&format!("{SECRET} {i}"))], None).await.unwrap();
        }
        store.append(&kept, vec![message("keep me")], None).await.unwrap();
        assert!(store.delete_session(&gone).await.unwrap());
    }
    assert!(files_contain(&dir, SECRET.as_bytes()), "sled no longer keeps deleted data; this test proves nothing");

    let out = binary().args(["compact", "--data-dir"]).arg(data.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("compacted"));
    assert!(!files_contain(&dir, SECRET.as_bytes()), "the deleted text is still on disk");

    let store = SledStore::open(&dir).unwrap();
    let kept = store.list_messages(&Scope::new("alice", "s-kept"), None, 10).await.unwrap();
    assert_eq!(kept.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["keep me"]);
    assert!(store.get_session("alice", "s-gone").await.unwrap().is_none());
}

/// A hostile drop-in plugin cannot borrow a vendor's variables (its endpoint override or its
/// key) nor read the host's or unrelated ones unless the operator grants them; the refusal says
/// what to grant. The admin view of `/status` lists every variable, origin and secret binding.
#[tokio::test]
async fn plugins_read_only_what_they_are_granted() {
    let (manifest, wasm) = common::plugin("dummy");
    let base = common::without_env(&std::fs::read_to_string(manifest).unwrap());
    let wasm = std::fs::read(wasm).unwrap();
    let as_plugin = |id: &str, extra: &str| {
        (id.to_string(), base.replace("id = \"dummy\"", &format!("id = \"{id}\"")) + extra, wasm.clone())
    };
    let openai = base.replace("id = \"dummy\"", "id = \"openai\"")
        + "\n[secrets]\nOPENAI_API_KEY = [\"https://api.openai.com\"]\n[env]\nbase_url = \"OPENAI_BASE_URL\"\n";
    let server = TestServer::start(Setup {
        custom: vec![
            as_plugin("borrow-url", "\n[env]\nbase_url = \"OPENAI_BASE_URL\"\n"),
            as_plugin("borrow-key", "\n[secrets]\nOPENAI_API_KEY = [\"https://evil.example\"]\n"),
            as_plugin("borrow-db", "\n[env]\ndatabase_url = \"DATABASE_URL\"\n"),
            as_plugin("host-var", "\n[env]\ndir = \"CODEXCONTINUE_DATA_DIR\"\n"),
            as_plugin("ungranted", "\n[env]\nproxy = \"HTTPS_PROXY\"\nregion = \"AWS_REGION\"\n"),
            as_plugin("granted", "\n[env]\nproxy = \"HTTPS_PROXY\"\nbase_url = \"GRANTED_BASE_URL\"\n"),
            ("openai".into(), openai, wasm.clone()),
        ],
        env: vec![
            ("OPENAI_API_KEY", "sk-vendor-secret".into()),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1".into()),
            ("DATABASE_URL", "postgres://app:pw@db.internal/app".into()),
            ("HTTPS_PROXY", "http://proxy.internal:3128".into()),
            ("GRANTED_BASE_URL", "https://granted.example".into()),
        ],
        configure: |c: &mut Config| {
            c.admin_token = Some(ADMIN.into());
            c.plugin_grants.insert("granted".into(), vec!["HTTPS_PROXY".into()]);
            // A grant of a vendor's variable is not honoured.
            c.plugin_grants.insert("borrow-url".into(), vec!["OPENAI_BASE_URL".into()]);
        },
        ..Setup::default()
    })
    .await;
    let response = server.client.get(server.url("/status")).bearer_auth(ADMIN).send().await.unwrap();
    let (_, status) = common::response(response).await;
    let plugin = |id: &str| {
        status["plugins"].as_array().unwrap().iter().find(|p| p["id"] == id).cloned().unwrap_or_else(|| panic!("{id}"))
    };
    for (id, expected) in [
        ("borrow-url", "OPENAI_BASE_URL belongs to the openai plugin"),
        ("borrow-key", "OPENAI_API_KEY belongs to the openai plugin"),
        ("borrow-db", "DATABASE_URL belongs to the postgres-memory plugin"),
        ("host-var", "CODEXCONTINUE_DATA_DIR is the host's own setting"),
        ("ungranted", "grant_env = [\"HTTPS_PROXY\", \"AWS_REGION\"]"),
    ] {
        let p = plugin(id);
        assert_eq!(p["state"], "failed", "{p}");
        let message = p["last_error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{id}: {message}");
        if id == "ungranted" {
            assert!(message.contains("[plugins.ungranted]") && message.contains("UNGRANTED_*"), "{message}");
        }
    }
    assert!(!status.to_string().contains("sk-vendor-secret"), "{status}");

    let granted = plugin("granted");
    assert_eq!(granted["state"], "active", "{granted}");
    let env = &granted["grants"]["env"];
    assert!(
        env.as_array().unwrap().contains(&serde_json::json!({
            "variable": "HTTPS_PROXY", "read_as": "config.proxy", "granted_by": "operator", "set": true
        })),
        "{env}"
    );
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|g| g["variable"] == "GRANTED_BASE_URL" && g["granted_by"] == "own-namespace")
    );
    assert_eq!(
        granted["grants"]["egress"],
        serde_json::json!([{ "origin": "https://granted.example:443", "from": "GRANTED_BASE_URL" }])
    );

    // The dummy allows no origin itself; the vendor override adds one, for it and its key.
    let openai = plugin("openai");
    assert_eq!(
        openai["grants"]["egress"],
        serde_json::json!([
            { "origin": "http://127.0.0.1:9", "from": "OPENAI_BASE_URL" },
        ]),
        "{openai}"
    );
    assert_eq!(
        openai["grants"]["secrets"],
        serde_json::json!([{
            "name": "OPENAI_API_KEY", "origins": ["https://api.openai.com:443", "http://127.0.0.1:9"], "set": true
        }]),
        "{openai}"
    );

    // Plain callers see none of this.
    let (_, plain) = server.get("/status").await;
    assert!(plain["plugins"].as_array().unwrap().iter().all(|p| p.get("grants").is_none()), "{plain}");
    server.stop().await;
}

/// A hostile plugin, running, reads none of the host's environment (its WASI environment is
/// empty, whatever it asks for) and cannot reach the origin another plugin was granted (the
/// `openai` plugin's `OPENAI_BASE_URL`): the request is denied before it leaves, naming the host.
#[tokio::test]
async fn a_running_hostile_plugin_reads_no_variable_and_borrows_no_origin() {
    let vendor = common::mock::MockServer::start(|_| common::mock::Reply::json(200, serde_json::json!({}))).await;
    let (manifest, wasm) = common::plugin("dummy");
    let base = common::without_env(&std::fs::read_to_string(manifest).unwrap());
    let wasm = std::fs::read(wasm).unwrap();
    let openai = base.replace("id = \"dummy\"", "id = \"openai\"")
        + "\n[secrets]\nOPENAI_API_KEY = [\"https://api.openai.com\"]\n[env]\nbase_url = \"OPENAI_BASE_URL\"\n";
    let server = TestServer::start(Setup {
        plugins: vec![],
        custom: vec![
            ("hostile".into(), base.replace("id = \"dummy\"", "id = \"hostile\""), wasm.clone()),
            ("openai".into(), openai, wasm),
        ],
        env: vec![
            ("OPENAI_API_KEY", "sk-vendor-secret".into()),
            ("OPENAI_BASE_URL", format!("{}/v1", vendor.url)),
            ("DATABASE_URL", "postgres://app:pw@db.internal/app".into()),
            ("UNRELATED_SETTING", "unrelated".into()),
        ],
        configure: |c: &mut Config| c.providers.retries = 0,
        ..Setup::default()
    })
    .await;
    for name in ["OPENAI_API_KEY", "OPENAI_BASE_URL", "DATABASE_URL", "UNRELATED_SETTING", "PATH", "HOME"] {
        let (status, body) =
            server.chat("hi", serde_json::json!({ "provider": "hostile", "model": format!("env:{name}") })).await;
        assert_eq!((status, body["reply"].as_str()), (200, Some("<unset>")), "{name}: {body}");
    }
    let model = format!("http:{}/v1/models", vendor.url);
    let (status, body) = server.chat("hi", serde_json::json!({ "provider": "hostile", "model": model })).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Denied") && message.contains(&vendor.url.replace("http://", "")), "{message}");
    assert!(vendor.requests().is_empty(), "the request must not leave at all");
    server.stop().await;
}
