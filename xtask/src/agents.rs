//! Claude Code and Codex CLI, the coding agents people point at CodexContinue, run headless
//! against the debug server (echo demo, client API keys on): each must finish a turn without an
//! error, and the turn must land in the memory session the agent named.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{TestServer, output, skip, status};

const KEY: &str = "sk-xtask-agents-0123456789";
/// Longest a single agent run may take (its first start unpacks a large binary).
const RUN_SECS: &str = "180";

pub fn agent_tests(root: &Path) -> Result<(), String> {
    if output("npm", &["--version"]).is_none() {
        return skip("the coding agent tests (agent-tests/)", "Node.js with npm is not installed");
    }
    let dir = root.join("agent-tests");
    install(&dir)?;
    let server = TestServer::start(root, &[("CODEXCONTINUE_API_KEYS", &format!("agents:{KEY}"))])?;
    let home = tempfile(root, "agent-home")?;
    claude_code(&dir, &server.url, &home)?;
    codex(&dir, &server.url, &home)?;
    let _ = std::fs::remove_dir_all(&home);
    Ok(())
}

/// `npm ci`, once per version of the lock file.
fn install(dir: &Path) -> Result<(), String> {
    let lock = std::fs::read_to_string(dir.join("package-lock.json")).map_err(|e| format!("agent-tests: {e}"))?;
    let stamp = dir.join("node_modules/.xtask-installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
        return Ok(());
    }
    status(Command::new("npm").current_dir(dir).args(["ci", "--no-audit", "--no-fund"]))?;
    std::fs::write(&stamp, lock).map_err(|e| format!("{}: {e}", stamp.display()))
}

fn tempfile(root: &Path, name: &str) -> Result<std::path::PathBuf, String> {
    let dir = root.join("target").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Runs `command` under `timeout`, returning its stdout; fails with both streams otherwise.
fn run(command: &mut Command, what: &str) -> Result<String, String> {
    let out = command.output().map_err(|e| format!("{what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{what} failed ({}):\n{stdout}\n{stderr}", out.status));
    }
    Ok(stdout)
}

/// The stored session, through the native API with the agents' key.
fn session(url: &str, id: &str) -> Result<Value, String> {
    let body = run(
        Command::new("curl").args(["-sf", "-H", &format!("x-api-key: {KEY}"), &format!("{url}/memory/{id}")]),
        &format!("GET /memory/{id}"),
    )?;
    serde_json::from_str(&body).map_err(|e| format!("GET /memory/{id}: {e}"))
}

fn claude_code(dir: &Path, url: &str, home: &Path) -> Result<(), String> {
    let mut claude = Command::new("timeout");
    claude
        .args([RUN_SECS, "node_modules/.bin/claude", "-p", "Say hi", "--output-format", "json"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("ANTHROPIC_BASE_URL", url)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_MODEL", "echo")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
    let stdout = run(&mut claude, "claude -p")?;
    let result: Value =
        serde_json::from_str(&stdout).map_err(|e| format!("claude -p printed no JSON ({e}):\n{stdout}"))?;
    let text = result["result"].as_str().unwrap_or_default();
    if result["is_error"] != false || !text.contains("Echo (offline demo)") {
        return Err(format!("Claude Code did not finish through the server:\n{stdout}"));
    }
    let id = result["session_id"].as_str().ok_or("claude -p named no session")?;
    let stored = session(url, id)?;
    if stored["messages"].as_array().is_none_or(|m| m.len() < 2) {
        return Err(format!("Claude Code's turn is not in its memory session {id}: {stored}"));
    }
    eprintln!("xtask: Claude Code finished a turn through /v1/messages; session {id} holds it");
    Ok(())
}

fn codex(dir: &Path, url: &str, home: &Path) -> Result<(), String> {
    let codex_home = home.join(".codex");
    std::fs::create_dir_all(&codex_home).map_err(|e| e.to_string())?;
    let config = format!(
        "model = \"echo\"\nmodel_provider = \"codexcontinue\"\n\n[model_providers.codexcontinue]\n\
         name = \"CodexContinue\"\nbase_url = \"{url}/v1\"\nwire_api = \"responses\"\nenv_key = \"CODEXCONTINUE_KEY\"\n"
    );
    std::fs::write(codex_home.join("config.toml"), config).map_err(|e| e.to_string())?;
    let mut codex = Command::new("timeout");
    codex
        .args([RUN_SECS, "node_modules/.bin/codex", "exec", "--skip-git-repo-check", "Say hi"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CODEX_HOME", &codex_home)
        .env("CODEXCONTINUE_KEY", KEY);
    let out = codex.output().map_err(|e| format!("codex exec: {e}"))?;
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() || !all.contains("you said \"Say hi\"") {
        return Err(format!("Codex CLI did not finish through the server ({}):\n{all}", out.status));
    }
    let id = all
        .lines()
        .find_map(|l| l.strip_prefix("session id: "))
        .map(str::trim)
        .ok_or_else(|| format!("codex exec named no session:\n{all}"))?;
    let stored = session(url, id)?;
    if stored["messages"].as_array().is_none_or(|m| m.len() < 2) {
        return Err(format!("Codex's turn is not in its memory session {id}: {stored}"));
    }
    eprintln!("xtask: Codex CLI finished a turn through /v1/responses; session {id} holds it");
    Ok(())
}
