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
    let manifest = std::fs::read_to_string(manifest).unwrap().replace("id = \"dummy\"", "id = \"broken\"");
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
    assert!(store.get_session("s-gone").await.unwrap().is_none());
}
