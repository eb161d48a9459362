//! Project automation that needs nothing but cargo: builds the wasm plugins, runs the server,
//! runs every test. `cargo xtask <command>`; the justfile recipes call these.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  build-plugins     build the wasm plugins (adds the wasm32-wasip2 target if missing) and
                    place each <id>.wasm beside its manifest in plugins/<id>/
  run [ARGS...]     build-plugins, then `codexcontinue serve ARGS...` (release build)
  test [ARGS...]    build-plugins, then every test: host and SDK (nextest when installed,
                    else cargo test; ARGS go to the runner), the plugins' own unit tests, the
                    examples (built for wasm, then their harness tests) and the plugin
                    walkthrough of docs/plugins.md (examples/walkthrough.sh)
";

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build-plugins") => build_plugins(),
        Some("run") => build_plugins().and_then(|()| run(&args[1..])),
        Some("test") => build_plugins().and_then(|()| test(&args[1..])),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root (xtask/..).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the repository root").to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn status(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    match command.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{shown} failed with {s}")),
        Err(e) => Err(format!("{shown} could not start: {e}")),
    }
}

fn output(command: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(command).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ensure_wasm_target() -> Result<(), String> {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("xtask: adding the {WASM_TARGET} target");
    let mut add = Command::new("rustup");
    add.args(["target", "add", WASM_TARGET]);
    status(&mut add)
        .map_err(|e| format!("{e}\n(without rustup, install the {WASM_TARGET} standard library another way)"))
}

/// Builds the plugins workspace and copies each plugin's wasm beside its manifest.
fn build_plugins() -> Result<(), String> {
    ensure_wasm_target()?;
    let plugins = root().join("plugins");
    let mut build = cargo();
    // The plugins workspace sets its own target in plugins/.cargo/config.toml, which cargo
    // only reads when run from inside that folder.
    build.current_dir(&plugins).args(["build", "--release", "--workspace"]);
    status(&mut build)?;

    let out_dir = plugins.join("target").join(WASM_TARGET).join("release");
    let mut installed = Vec::new();
    for entry in std::fs::read_dir(&plugins).map_err(|e| format!("{}: {e}", plugins.display()))? {
        let dir = entry.map_err(|e| e.to_string())?.path();
        let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if !dir.join(format!("{id}.toml")).is_file() {
            continue;
        }
        let built = out_dir.join(format!("{}.wasm", id.replace('-', "_")));
        let target = dir.join(format!("{id}.wasm"));
        std::fs::copy(&built, &target)
            .map_err(|e| format!("copying {} to {}: {e}", built.display(), target.display()))?;
        installed.push(id);
    }
    installed.sort();
    eprintln!("xtask: plugins ready in plugins/: {}", installed.join(", "));
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let mut serve = cargo();
    serve.current_dir(root()).args(["run", "--release", "--package", "codexcontinue", "--", "serve"]).args(args);
    status(&mut serve)
}

fn host_triple() -> Result<String, String> {
    let info = output("rustc", &["-vV"]).ok_or("cannot run rustc -vV")?;
    info.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV names no host".into())
}

fn test(args: &[String]) -> Result<(), String> {
    let root = root();
    // The plugins' pure logic is unit-tested natively; their wasm builds are exercised by the
    // host's integration tests.
    let mut plugin_tests = cargo();
    plugin_tests.current_dir(root.join("plugins")).args(["test", "--workspace", "--target", &host_triple()?]);
    status(&mut plugin_tests)?;
    test_examples(&root)?;
    walkthrough(&root)?;

    // The workspace's own tests run last, so the run closes on their summary line.
    let nextest = output("cargo-nextest", &["--version"]).is_some();
    if nextest {
        // nextest does not run doctests.
        let mut doc = cargo();
        doc.current_dir(&root).args(["test", "--workspace", "--doc"]);
        status(&mut doc)?;
    }
    let mut tests = cargo();
    tests.current_dir(&root);
    if nextest {
        tests.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        tests.args(["test", "--workspace", "--no-fail-fast"]);
    }
    status(tests.args(args))
}

/// Builds the example plugins for wasm (the Python one with componentize-py), then runs their
/// harness tests on the host.
fn test_examples(root: &Path) -> Result<(), String> {
    let examples = root.join("examples");
    let mut build = cargo();
    build.current_dir(&examples).args(["build", "--release", "--workspace"]);
    status(&mut build)?;

    let mut tests = cargo();
    tests.current_dir(&examples).args(["test", "--workspace", "--target", &host_triple()?]);
    // build.sh installs componentize-py from PyPI when needed, which takes Python; without it
    // (never on CI, which has it) the Python example is skipped, saying so.
    if output("python3", &["--version"]).is_some() || std::env::var_os("CI").is_some() {
        status(Command::new("bash").arg(examples.join("python-provider/build.sh")))?;
    } else {
        eprintln!("xtask: skipping examples/python-provider: python3 is not installed");
        tests.args(["--exclude", "python-provider"]);
    }
    status(&mut tests)
}

/// Runs the ten-minute walkthrough of docs/plugins.md end to end: scaffold, harness test,
/// build, validate, a real server with hot reload, a chat. Scaffolded crates share the
/// examples' target folder, which already holds the harness and the host built for it.
fn walkthrough(root: &Path) -> Result<(), String> {
    let mut server = cargo();
    server.current_dir(root).args(["build", "--package", "codexcontinue", "--bin", "codexcontinue"]);
    status(&mut server)?;
    let mut script = Command::new("bash");
    script
        .arg(root.join("examples/walkthrough.sh"))
        .env("CODEXCONTINUE_BIN", root.join("target/debug/codexcontinue"))
        .env("CARGO_TARGET_DIR", root.join("examples/target"));
    status(&mut script)
}
