//! `cargo xtask image`: stages deploy/Containerfile's build context in target/image/ and builds
//! the image with buildah (offline: the image is FROM scratch); `smoke` builds it as CI does and
//! runs its entrypoint from the image's own root filesystem.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{apt_install, build_server, cargo, output, status};

/// The static build's target: one binary with no shared libraries, fit for `FROM scratch`.
const MUSL: &str = "x86_64-unknown-linux-musl";
pub const IMAGE: &str = "localhost/codexcontinue";
const BUILDAH: &str = "/usr/bin/buildah";
const CA_CERTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The image's user (Containerfile `USER`), the owner of /data.
const USER: &str = "65532:65532";
/// How long the smoke test waits for the server to listen and for a dropped plugin to load;
/// both take a second or two here, a debug build compiling a plugin under load a little more.
const DEADLINE: Duration = Duration::from_secs(120);

/// Which server binary goes in the image.
#[derive(Clone, Copy, PartialEq)]
pub enum Binary {
    /// A static musl release build: what operators run.
    Release,
    /// target/debug/codexcontinue with the shared libraries it links: what CI tests, to save
    /// a second, release build of the server.
    Debug,
}

/// buildah with vfs storage, which needs no overlay support (containers, CI).
fn buildah() -> Command {
    let mut command = Command::new(BUILDAH);
    command.args(["--storage-driver", "vfs"]);
    command
}

/// Builds the image as `tag` (plugins must be built).
pub fn build(root: &Path, binary: Binary, tag: &str) -> Result<(), String> {
    apt_install(BUILDAH, "buildah", "building the container image")?;
    let server = match binary {
        Binary::Release => build_musl(root)?,
        Binary::Debug => {
            build_server(root)?;
            root.join("target/debug/codexcontinue")
        }
    };
    let context = stage(root, &server, binary)?;
    // chroot isolation: RUN-less builds need no user namespaces; docker format keeps HEALTHCHECK.
    status(
        buildah()
            .args(["bud", "--isolation", "chroot", "--format", "docker", "--file"])
            .arg(root.join("deploy/Containerfile"))
            .args(["--tag", tag])
            .arg(&context),
    )?;
    eprintln!("xtask: built {tag} (run it: podman run -p 8080:8080 -v codexcontinue-data:/data {tag})");
    Ok(())
}

/// `cargo build --release --target x86_64-unknown-linux-musl`, adding the target and musl-gcc
/// (ring compiles C) when missing; the binary's path.
fn build_musl(root: &Path) -> Result<PathBuf, String> {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == MUSL) {
        status(Command::new("rustup").args(["target", "add", MUSL]))?;
    }
    apt_install("/usr/bin/musl-gcc", "musl-tools", "the static musl build")?;
    let mut build = cargo();
    build
        .current_dir(root)
        .args(["build", "--release", "--target", MUSL, "--package", "codexcontinue", "--bin", "codexcontinue"])
        .env("CC_x86_64_unknown_linux_musl", "musl-gcc");
    status(&mut build)?;
    Ok(root.join("target").join(MUSL).join("release/codexcontinue"))
}

/// target/image/: rootfs/ (the server, CA certificates, every first-party plugin, /tmp, and for
/// a debug binary the libraries it links) and data/ (the empty /data).
fn stage(root: &Path, server: &Path, binary: Binary) -> Result<PathBuf, String> {
    let context = root.join("target/image");
    let rootfs = context.join("rootfs");
    if context.exists() {
        std::fs::remove_dir_all(&context).map_err(|e| format!("{}: {e}", context.display()))?;
    }
    for dir in [rootfs.join("etc/ssl/certs"), rootfs.join("plugins"), rootfs.join("tmp"), context.join("data")] {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    set_mode(&rootfs.join("tmp"), 0o1777)?;
    copy(server, &rootfs.join("codexcontinue"))?;
    // The build keeps line tables for backtraces (200 MB); the image needs none (46 MB).
    if output("strip", &["--version"]).is_some() {
        status(Command::new("strip").arg("--strip-debug").arg(rootfs.join("codexcontinue")))?;
    }
    copy(Path::new(CA_CERTS), &rootfs.join(CA_CERTS.trim_start_matches('/')))
        .map_err(|e| format!("{e} (install Debian's ca-certificates)"))?;
    for (id, dir) in plugin_dirs(root)? {
        let into = rootfs.join("plugins").join(&id);
        std::fs::create_dir_all(&into).map_err(|e| format!("{}: {e}", into.display()))?;
        for file in [format!("{id}.toml"), format!("{id}.wasm")] {
            copy(&dir.join(&file), &into.join(&file))?;
        }
    }
    if binary == Binary::Debug {
        for lib in linked_libraries(server)? {
            copy(&lib, &rootfs.join(lib.strip_prefix("/").unwrap_or(&lib)))?;
        }
    }
    Ok(context)
}

/// The built first-party plugins: plugins/<id>/ holding <id>.toml and <id>.wasm (so not
/// plugins/testing/, whose plugins only the tests load).
fn plugin_dirs(root: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let plugins = root.join("plugins");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&plugins).map_err(|e| format!("{}: {e}", plugins.display()))? {
        let dir = entry.map_err(|e| e.to_string())?.path();
        let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if dir.join(format!("{id}.toml")).is_file() {
            if !dir.join(format!("{id}.wasm")).is_file() {
                return Err(format!("{} is not built: run cargo xtask build-plugins", dir.display()));
            }
            found.push((id, dir));
        }
    }
    found.sort();
    Ok(found)
}

/// The shared libraries (and the loader) `ldd` says the binary needs.
fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let listing = output("ldd", &[&binary.to_string_lossy()]).ok_or("ldd failed on the server binary")?;
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    Ok(listing
        .lines()
        .filter_map(|l| l.split("=>").last()?.split_whitespace().next().filter(|p| p.starts_with('/')))
        .map(PathBuf::from)
        .collect())
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::copy(from, to).map(drop).map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// CI's check of the image: built around the debug binary, then [`check`]ed and removed
/// (the vfs store keeps a full copy per image; CI needs none after the check).
pub fn smoke(root: &Path) -> Result<(), String> {
    let tag = format!("{IMAGE}:ci");
    build(root, Binary::Debug, &tag)?;
    let result = check(root, &tag);
    let _ = buildah().args(["rmi", "--force", &tag]).stdout(Stdio::null()).status();
    result
}

/// Runs an image's ENTRYPOINT and CMD as its USER from its own root filesystem (`buildah run
/// --isolation chroot`; podman needs more privileges than CI containers give), with a host
/// folder mounted at /plugins. It must pass its own HEALTHCHECK, answer /chat through the echo
/// demo, and load a plugin dropped into the mounted folder while it runs.
pub fn check(root: &Path, tag: &str) -> Result<(), String> {
    Container::from(tag).and_then(|container| smoke_run(root, &container))?;
    eprintln!("xtask: image {tag} passed its smoke test");
    Ok(())
}

fn smoke_run(root: &Path, container: &Container) -> Result<(), String> {
    let config =
        |field: &str| container.inspect(&format!("{{{{range .Docker.Config.{field}}}}}{{{{.}}}}\n{{{{end}}}}"));
    let user = container.inspect("{{.Docker.Config.User}}")?;
    if user.trim() != USER {
        return Err(format!("the image runs as {user:?}, not {USER}"));
    }
    let entrypoint: Vec<String> =
        config("Entrypoint")?.lines().chain(config("Cmd")?.lines()).map(String::from).collect();
    let healthcheck: Vec<String> = config("Healthcheck.Test")?.lines().skip(1).map(String::from).collect();

    // Starts with echo only; ollama (no key needed) is dropped in while the server runs.
    let plugins = root.join("target/xtask-image-plugins");
    let _ = std::fs::remove_dir_all(&plugins);
    std::fs::create_dir_all(&plugins).map_err(|e| format!("{}: {e}", plugins.display()))?;
    for file in ["echo.toml", "echo.wasm"] {
        copy(&root.join("plugins/echo").join(file), &plugins.join(file))?;
    }
    let mount = format!("{}:/plugins", plugins.display());
    let server = container
        .run(&["--volume", &mount, "--env", "CODEXCONTINUE_BIND=127.0.0.1:0", "--env", "NO_COLOR=1"], &entrypoint)?;
    let server = Server::listening(server)?;
    let url = &server.url;

    // The image's own HEALTHCHECK, pointed at the port the server took.
    let port = url.rsplit(':').next().unwrap_or_default();
    let mut check = container.command(&["--env", &format!("CODEXCONTINUE_BIND=0.0.0.0:{port}")], &healthcheck);
    status(&mut check).map_err(|e| format!("the image's HEALTHCHECK failed: {e}"))?;

    let reply = post(&format!("{url}/chat"), r#"{"message":"hello from the image"}"#)?;
    let reply: serde_json::Value = serde_json::from_str(&reply).map_err(|e| format!("/chat: {e}: {reply}"))?;
    let text = reply["reply"].as_str().unwrap_or_default();
    if !(text.starts_with("Echo (offline demo)") && text.contains("hello from the image")) {
        return Err(format!("/chat answered {reply}"));
    }

    for file in ["ollama.wasm", "ollama.toml"] {
        copy(&root.join("plugins/ollama").join(file), &plugins.join(file))?;
    }
    let started = Instant::now();
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&get(&format!("{url}/status"))?).map_err(|e| e.to_string())?;
        let plugins = status["plugins"].as_array().cloned().unwrap_or_default();
        if plugins.iter().any(|p| p["id"] == "ollama" && p["state"] == "active") {
            break;
        }
        if started.elapsed() > DEADLINE {
            return Err(format!("the plugin dropped into /plugins did not load within {DEADLINE:?}: {status}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

fn get(url: &str) -> Result<String, String> {
    let mut response = ureq::get(url).call().map_err(|e| format!("GET {url}: {e}"))?;
    response.body_mut().read_to_string().map_err(|e| format!("GET {url}: {e}"))
}

fn post(url: &str, json: &str) -> Result<String, String> {
    let mut response = ureq::post(url)
        .header("content-type", "application/json")
        .send(json)
        .map_err(|e| format!("POST {url}: {e}"))?;
    response.body_mut().read_to_string().map_err(|e| format!("POST {url}: {e}"))
}

/// A buildah working container over an image, removed on drop.
struct Container {
    name: String,
}

impl Container {
    fn from(image: &str) -> Result<Self, String> {
        let out = buildah().args(["from", "--pull-never", image]).output().map_err(|e| format!("buildah from: {e}"))?;
        if !out.status.success() {
            return Err(format!("buildah from {image}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(Self { name: String::from_utf8_lossy(&out.stdout).trim().to_string() })
    }

    /// The image configuration through a Go template.
    fn inspect(&self, format: &str) -> Result<String, String> {
        let out = buildah()
            .args(["inspect", "--type", "container", "--format", format, &self.name])
            .output()
            .map_err(|e| format!("buildah inspect: {e}"))?;
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(format!("buildah inspect: {}", String::from_utf8_lossy(&out.stderr))),
        }
    }

    /// `argv` inside the container as the image's user, on the host network.
    fn command(&self, options: &[&str], argv: &[String]) -> Command {
        let mut command = buildah();
        command
            .args(["run", "--isolation", "chroot", "--network", "host", "--user", USER])
            .args(options)
            .arg(&self.name)
            .arg("--")
            .args(argv);
        command
    }

    /// Starts `argv` in its own process group: buildah leaves its child running when it is
    /// killed itself, so [`Server`] stops the whole group.
    fn run(&self, options: &[&str], argv: &[String]) -> Result<Child, String> {
        use std::os::unix::process::CommandExt;
        self.command(options, argv)
            .process_group(0)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("buildah run: {e}"))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = buildah().args(["rm", &self.name]).stdout(Stdio::null()).status();
    }
}

/// The server running in the container, stopped on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Waits (bounded) for the "listening on" line.
    fn listening(mut child: Child) -> Result<Self, String> {
        let lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let (found, url) = std::sync::mpsc::channel();
        // Drains the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("  image: {line}");
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = found.send(url.trim().to_string());
                }
            }
        });
        let mut server = Self { child, url: String::new() };
        server.url = url
            .recv_timeout(DEADLINE)
            .map_err(|_| format!("the server in the image did not listen within {DEADLINE:?}"))?;
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
