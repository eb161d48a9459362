//! The Streamlit front end (frontends/streamlit/): `cargo xtask streamlit` serves it against
//! CODEXCONTINUE_URL, and `cargo xtask test` runs its AppTest suite against the debug server.
//! Both use a virtualenv with its pinned requirements in target/streamlit.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{output, skip, status};

const APP: &str = "frontends/streamlit";
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// A virtualenv with frontends/streamlit/requirements.txt, made once (again when that file
/// changes); its bin folder.
fn venv(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join("target/streamlit");
    let requirements = root.join(APP).join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    let stamp = venv.join("installed.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        status(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv))?;
        status(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--requirement"]).arg(&requirements))?;
        std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    }
    Ok(venv.join("bin"))
}

/// `streamlit run app.py` against CODEXCONTINUE_URL (default http://127.0.0.1:8080, where
/// `cargo xtask run` serves); ARGS go to `streamlit run` (e.g. `--server.port 8502`).
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let bin = venv(root)?;
    let url = std::env::var("CODEXCONTINUE_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    eprintln!("xtask: Streamlit front end for {url}");
    status(
        Command::new(bin.join("streamlit"))
            .args(["run", "app.py", "--browser.gatherUsageStats", "false"])
            .args(args)
            .env("CODEXCONTINUE_URL", url)
            .current_dir(root.join(APP)),
    )
}

/// The AppTest suite (frontends/streamlit/tests/), which starts target/debug/codexcontinue
/// itself: it needs to restart it and to stop it.
pub fn test(root: &Path) -> Result<(), String> {
    if output("python3", &["--version"]).is_none() {
        return skip("the Streamlit tests (frontends/streamlit/)", "python3 is not installed");
    }
    let bin = venv(root)?;
    status(
        Command::new(bin.join("python"))
            .args(["-m", "pytest", "-q"])
            .env("CODEXCONTINUE_BIN", root.join("target/debug/codexcontinue"))
            .env("CODEXCONTINUE_PLUGINS_DIR", root.join("plugins"))
            .env("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
            .env_remove("CODEXCONTINUE_URL")
            .current_dir(root.join(APP)),
    )
}
