//! Checks deploy/codexcontinue.service with systemd's own tools, without a running systemd:
//! `systemd-analyze verify` (syntax, directives, the binary it starts) and
//! `systemd-analyze security --offline` (the sandbox stays tight).

use std::path::Path;
use std::process::Command;

use crate::{apt_install, skip};

const ANALYZE: &str = "/usr/bin/systemd-analyze";
/// The unit's path for the binary; the check points it at the debug build instead.
const INSTALLED_BIN: &str = "/usr/local/bin/codexcontinue";
/// `systemd-analyze security` scores exposure from 0 (locked down) to 100 (10.0, wide open);
/// the unit scores 11 (1.1), short only of a private network and an IP allow-list, which a
/// network service cannot have. A loosened sandbox fails the run.
const MAX_EXPOSURE: &str = "15";

/// Verifies the unit and its sandbox score. Needs target/debug/codexcontinue (the walkthrough
/// builds it).
pub fn check(root: &Path) -> Result<(), String> {
    if let Err(e) = apt_install(ANALYZE, "systemd", "the systemd unit check") {
        return skip("the systemd unit check (deploy/codexcontinue.service)", &e);
    }
    let unit = std::fs::read_to_string(root.join("deploy/codexcontinue.service"))
        .map_err(|e| format!("deploy/codexcontinue.service: {e}"))?;
    let start = format!("ExecStart={INSTALLED_BIN} ");
    if !unit.contains(&start) {
        return Err(format!(
            "deploy/codexcontinue.service no longer starts {INSTALLED_BIN}; update xtask/src/service.rs"
        ));
    }
    // verify insists the binary exists, so the copy it reads starts the one just built.
    let dir = root.join("target/xtask-systemd");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let copy = dir.join("codexcontinue.service");
    let built = root.join("target/debug/codexcontinue");
    std::fs::write(&copy, unit.replace(&start, &format!("ExecStart={} ", built.display())))
        .map_err(|e| format!("{}: {e}", copy.display()))?;
    // verify exits 0 on unknown or misspelt keys, which it only warns about: any word from it
    // is a failure.
    let verify = Command::new(ANALYZE)
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .map_err(|e| format!("{ANALYZE} could not start: {e}"))?;
    let said = String::from_utf8_lossy(&verify.stderr).trim().to_string();
    if !verify.status.success() || !said.is_empty() {
        return Err(format!("systemd-analyze verify deploy/codexcontinue.service: {said}"));
    }
    let security = Command::new(ANALYZE)
        .args(["security", "--offline=yes", "--no-pager", &format!("--threshold={MAX_EXPOSURE}")])
        .arg(&copy)
        .output()
        .map_err(|e| format!("{ANALYZE} could not start: {e}"))?;
    if !security.status.success() {
        return Err(format!(
            "{}\nthe unit's sandbox is looser than an exposure of {MAX_EXPOSURE} (systemd-analyze security)",
            String::from_utf8_lossy(&security.stdout)
        ));
    }
    eprintln!("xtask: deploy/codexcontinue.service verified");
    Ok(())
}
