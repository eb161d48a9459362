//! Project automation that needs nothing but cargo: builds the wasm plugins, runs the server,
//! runs every test; builds the container image (`image.rs`), checks the systemd unit
//! (`service.rs`) and runs the Streamlit front end (`streamlit.rs`). `cargo xtask <command>`;
//! the justfile recipes call these.

mod agents;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

mod image;
mod service;
mod streamlit;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  build-plugins     build the wasm plugins (adds the wasm32-wasip2 target if missing) and
                    place each <id>.wasm beside its manifest in plugins/<id>/
  run [--] [ARGS...]
                    build-plugins, then `codexcontinue serve ARGS...` (release build)
  image [--debug] [--smoke]
                    build-plugins, then the container image localhost/codexcontinue:latest
                    (deploy/Containerfile, FROM scratch) with buildah over a static musl
                    release build; --debug puts the debug build and its libraries in instead
                    (:debug); --smoke then runs the image's smoke test on it
  streamlit [ARGS...]
                    the Streamlit front end (frontends/streamlit/, pinned into a virtualenv
                    in target/streamlit) against CODEXCONTINUE_URL (default
                    http://127.0.0.1:8080); ARGS go to `streamlit run`
  bench [ARGS...]   build-plugins, install oha (the load generator) when missing, then
                    `cargo bench --package codexcontinue ARGS...`: the overhead, memory,
                    reload, telemetry and side-by-side proxy benchmarks (BENCHMARKS.md)
  test [ARGS...]    build-plugins, then every test: host and SDK (nextest when installed,
                    else cargo test; ARGS go to the runner), the plugins' own unit tests, the
                    examples (built for wasm, then their harness tests), the plugin
                    walkthrough of docs/plugins.md (examples/walkthrough.sh), the web chat
                    page in headless Chromium (web-tests/; needs Node.js 20+ with npm and
                    /usr/bin/chromium, which is installed with apt-get when running as root)
                    and the API from outside: Schemathesis against /openapi.json, the
                    official OpenAI and Anthropic SDKs (from PyPI, into target/pytools),
                    Claude Code and Codex CLI (agent-tests/, from npm) finishing a turn, the
                    Streamlit front end with AppTest against the debug server, the
                    systemd unit (systemd-analyze) and the container image (buildah; built
                    around the debug binary, run from its root filesystem)
  test-web          build-plugins and the server, then only the web page test
  test-api          build-plugins and the server, then only the Schemathesis and SDK runs
  test-agents       build-plugins and the server, then only the Claude Code and Codex runs
  test-streamlit    build-plugins and the server, then only the Streamlit AppTest suite
  test-deploy       build-plugins and the server, then only the systemd unit check and the
                    container image smoke test
";

const WASM_TARGET: &str = "wasm32-wasip2";
/// Debian's Chromium, which drives the web page test (playwright-core downloads no browser).
const CHROMIUM: &str = "/usr/bin/chromium";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build-plugins") => build_plugins(),
        Some("run") => build_plugins().and_then(|()| run(&args[1..])),
        Some("test") => build_plugins().and_then(|()| test(&args[1..])),
        Some("bench") => build_plugins().and_then(|()| bench(forwarded(&args[1..]))),
        Some("test-web") => build_plugins().and_then(|()| build_server(&root())).and_then(|()| web_tests(&root())),
        Some("test-api") => build_plugins().and_then(|()| build_server(&root())).and_then(|()| api_contract(&root())),
        Some("test-agents") => {
            build_plugins().and_then(|()| build_server(&root())).and_then(|()| agents::agent_tests(&root()))
        }
        Some("streamlit") => streamlit::run(&root(), forwarded(&args[1..])),
        Some("test-streamlit") => {
            build_plugins().and_then(|()| build_server(&root())).and_then(|()| streamlit::test(&root()))
        }
        Some("test-deploy") => build_plugins().and_then(|()| build_server(&root())).and_then(|()| deploy(&root())),
        Some("image") => build_plugins().and_then(|()| {
            let debug = args[1..].iter().any(|a| a == "--debug");
            let smoke = args[1..].iter().any(|a| a == "--smoke");
            if let Some(other) = args[1..].iter().find(|a| !matches!(a.as_str(), "--debug" | "--smoke")) {
                return Err(format!("unknown image option {other:?}\n\n{USAGE}"));
            }
            let (binary, tag) = match debug {
                true => (image::Binary::Debug, format!("{}:debug", image::IMAGE)),
                false => (image::Binary::Release, format!("{}:latest", image::IMAGE)),
            };
            image::build(&root(), binary, &tag)?;
            if smoke { image::check(&root(), &tag) } else { Ok(()) }
        }),
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
    serve
        .current_dir(root())
        .args(["run", "--release", "--package", "codexcontinue", "--", "serve"])
        .args(forwarded(args));
    status(&mut serve)
}

/// The arguments a command passes on (to `serve`, to `streamlit run`): people type
/// `cargo xtask run -- --bind …` as they would with `cargo run`, and cargo hands that `--` on to
/// us; `serve` would take it as the end of its flags, so one leading `--` is dropped.
fn forwarded(args: &[String]) -> &[String] {
    match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    }
}

/// The benchmarks; the proxy benchmark drives its load with oha, installed from crates.io.
fn bench(args: &[String]) -> Result<(), String> {
    if output("oha", &["--version"]).is_none() {
        eprintln!("xtask: installing oha, the load generator of the proxy benchmark");
        status(cargo().args(["install", "oha", "--locked"]))?;
    }
    status(cargo().current_dir(root()).args(["bench", "--package", "codexcontinue"]).args(args))
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
    web_tests(&root)?;
    api_contract(&root)?;
    agents::agent_tests(&root)?;
    streamlit::test(&root)?;
    deploy(&root)?;

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
    // build.sh installs componentize-py from PyPI when needed, which takes Python.
    if output("python3", &["--version"]).is_some() {
        status(Command::new("bash").arg(examples.join("python-provider/build.sh")))?;
    } else {
        skip("examples/python-provider", "python3 is not installed")?;
        tests.args(["--exclude", "python-provider"]);
    }
    status(&mut tests)
}

/// Runs the ten-minute walkthrough of docs/plugins.md end to end: scaffold, harness test,
/// build, validate, a real server with hot reload, a chat. Scaffolded crates share the
/// examples' target folder, which already holds the harness and the host built for it.
fn walkthrough(root: &Path) -> Result<(), String> {
    build_server(root)?;
    let mut script = Command::new("bash");
    script
        .arg(root.join("examples/walkthrough.sh"))
        .env("CODEXCONTINUE_BIN", root.join("target/debug/codexcontinue"))
        .env("CARGO_TARGET_DIR", root.join("examples/target"));
    status(&mut script)
}

/// The deployment files: the systemd unit, then the container image (needs the debug server).
fn deploy(root: &Path) -> Result<(), String> {
    service::check(root)?;
    if let Err(e) = apt_install("/usr/bin/buildah", "buildah", "the container image smoke test") {
        return skip("the container image smoke test", &e);
    }
    image::smoke(root)
}

/// Builds the debug server, target/debug/codexcontinue, which the script-driven tests run.
fn build_server(root: &Path) -> Result<(), String> {
    let mut server = cargo();
    server.current_dir(root).args(["build", "--package", "codexcontinue", "--bin", "codexcontinue"]);
    status(&mut server)
}

/// Drives the web chat page (`GET /`) in headless Chromium against the debug server the
/// walkthrough built: web-tests/chat.test.mjs, with playwright-core from npm.
fn web_tests(root: &Path) -> Result<(), String> {
    if output("node", &["--version"]).is_none() {
        return skip("the web page test (web-tests/)", "Node.js 20+ with npm is not installed");
    }
    if let Err(e) = ensure_chromium() {
        return skip("the web page test (web-tests/)", &e);
    }
    let dir = root.join("web-tests");
    // Installs exactly the pinned playwright-core from package-lock.json, once.
    if !dir.join("node_modules").is_dir() {
        let mut install = Command::new("npm");
        install.current_dir(&dir).args(["ci", "--no-audit", "--no-fund"]);
        status(&mut install)?;
    }
    let mut test = Command::new("node");
    test.current_dir(root)
        .args(["--test", "web-tests/chat.test.mjs"])
        .env("CODEXCONTINUE_BIN", root.join("target/debug/codexcontinue"));
    status(&mut test)
}

/// Installs Debian's Chromium with apt-get when it is missing and we are root (as on CI
/// containers); otherwise says how to install it.
fn ensure_chromium() -> Result<(), String> {
    apt_install(CHROMIUM, "chromium", "the web page test")
}

/// Makes sure `path` exists, installing Debian's `package` with apt-get when it is missing and we
/// are root (as on CI containers); otherwise an error that says how to install it.
fn apt_install(path: &str, package: &str, needed_by: &str) -> Result<(), String> {
    if Path::new(path).exists() {
        return Ok(());
    }
    if output("id", &["-u"]).is_none_or(|uid| uid.trim() != "0") {
        return Err(format!(
            "{path} is missing: {needed_by} needs it; install it with `sudo apt-get install {package}` (Debian)"
        ));
    }
    eprintln!("xtask: installing {package} with apt-get");
    status(Command::new("apt-get").arg("update"))?;
    status(Command::new("apt-get").args(["install", "-y", package]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    match Path::new(path).exists() {
        true => Ok(()),
        false => Err(format!("apt-get installed {package} but {path} is still missing")),
    }
}

/// A step whose tools are missing: an error on CI, which must run everything; elsewhere the
/// run goes on, saying what it left out, so a machine with only Rust still tests the rest.
fn skip(step: &str, why: &str) -> Result<(), String> {
    if std::env::var_os("CI").is_some() {
        return Err(format!("{step} cannot run: {why}"));
    }
    eprintln!("xtask: SKIPPING {step}: {why}");
    Ok(())
}

/// The Python tools the API tests install from PyPI, pinned, into target/pytools.
const PY_TOOLS: [&str; 3] = ["schemathesis==4.32.5", "openai==3.57.0", "anthropic==2.15.0"];

/// A virtualenv with [`PY_TOOLS`], made once (again when the pins change); its bin folder.
fn py_tools(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join("target/pytools");
    let stamp = venv.join("installed.txt");
    let wanted = PY_TOOLS.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        status(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv))?;
        status(Command::new(venv.join("bin/pip")).args(["install", "--quiet"]).args(PY_TOOLS))?;
        std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    }
    Ok(venv.join("bin"))
}

/// The debug server on an ephemeral loopback port with the echo demo (no provider key, no
/// developer config, memory store), killed on drop.
struct TestServer {
    child: std::process::Child,
    url: String,
}

impl TestServer {
    fn start(root: &Path, env: &[(&str, &str)]) -> Result<Self, String> {
        // Under target/, so the compile cache carries over from run to run.
        let data = root.join("target/xtask-server");
        let mut child = Command::new(root.join("target/debug/codexcontinue"))
            .args(["serve", "--bind", "127.0.0.1:0", "--store", "memory", "--watch", "false", "--data-dir"])
            .arg(&data)
            .arg("--plugins-dir")
            .arg(root.join("plugins"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn,codexcontinue=info")
            .envs(env.iter().copied())
            .current_dir(std::env::temp_dir())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let url =
            lines.by_ref().map_while(Result::ok).find_map(|l| l.split("listening on ").nth(1).map(str::to_string));
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let server = Self { child, url: url.unwrap_or_default().trim().to_string() };
        match server.url.is_empty() {
            true => Err("the server exited before listening".into()),
            false => Ok(server),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The API from the outside, with Python tools: Schemathesis fuzzes it from its own OpenAPI
/// document (no input may cause a 5xx, every status must be documented, every reply must match
/// its schema; a fixed seed keeps runs repeatable), then the official OpenAI and Anthropic SDKs run
/// examples/clients/{openai,anthropic}_sdk.py against /v1 with client API keys on.
/// Last, examples/clients/tool_loops.py runs a tool loop through every dialect (both SDKs) with
/// the openai, anthropic and ollama plugins over examples/clients/vendor_mock.py.
fn api_contract(root: &Path) -> Result<(), String> {
    if output("python3", &["--version"]).is_none() {
        return skip("the API tests (Schemathesis, OpenAI SDK)", "python3 is not installed");
    }
    let bin = py_tools(root)?;
    let server = TestServer::start(root, &[])?;
    status(
        Command::new(bin.join("st"))
            .arg("run")
            .arg(format!("{}/openapi.json", server.url))
            .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance"])
            .args(["--checks", "response_schema_conformance,response_headers_conformance"])
            .args(["--exclude-path", "/admin/plugins/reload", "--max-examples", "40", "--seed", "20261125"])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .current_dir(root.join("target")),
    )?;
    drop(server);

    const KEY: &str = "sk-xtask-sdk-0123456789";
    let server = TestServer::start(root, &[("CODEXCONTINUE_API_KEYS", &format!("sdk:{KEY}"))])?;
    for client in ["openai_sdk.py", "anthropic_sdk.py"] {
        status(
            Command::new(bin.join("python")).arg(root.join("examples/clients").join(client)).arg(&server.url).arg(KEY),
        )?;
    }
    drop(server);

    // A tool loop through every dialect, answered by the openai, anthropic and ollama plugins
    // over a mock of each vendor.
    let mock = VendorMock::start(&bin.join("python"), &root.join("examples/clients/vendor_mock.py"))?;
    let base = format!("http://127.0.0.1:{}", mock.port);
    let openai = format!("{base}/v1");
    let env = [
        ("OPENAI_API_KEY", "sk-mock-0123456789"),
        ("OPENAI_BASE_URL", openai.as_str()),
        ("ANTHROPIC_API_KEY", "sk-ant-mock-0123456789"),
        ("ANTHROPIC_BASE_URL", base.as_str()),
        ("OLLAMA_HOST", base.as_str()),
    ];
    let server = TestServer::start(root, &env)?;
    status(Command::new(bin.join("python")).arg(root.join("examples/clients/tool_loops.py")).arg(&server.url))
}

/// examples/clients/vendor_mock.py, killed on drop.
struct VendorMock {
    child: std::process::Child,
    port: u16,
}

impl VendorMock {
    fn start(python: &Path, script: &Path) -> Result<Self, String> {
        let mut child = Command::new(python)
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the vendor mock: {e}"))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).ok();
        match line.trim().parse() {
            Ok(port) => Ok(Self { child, port }),
            Err(_) => {
                let _ = child.kill();
                Err(format!("the vendor mock did not say its port: {line:?}"))
            }
        }
    }
}

impl Drop for VendorMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    /// `cargo xtask run -- --bind …` and `cargo xtask run --bind …` give `serve` the same flags.
    #[test]
    fn run_passes_flags_with_or_without_a_separator() {
        let flags = strings(&["--bind", "0.0.0.0:8080", "--store", "memory"]);
        assert_eq!(forwarded(&strings(&["--", "--bind", "0.0.0.0:8080", "--store", "memory"])), flags);
        assert_eq!(forwarded(&flags), flags);
        assert!(forwarded(&strings(&["--"])).is_empty());
        assert!(forwarded(&[]).is_empty());
        // Only the separator in front is cargo's; a later one belongs to `serve`.
        assert_eq!(forwarded(&strings(&["--bind", "x", "--", "y"])), strings(&["--bind", "x", "--", "y"]));
    }
}
