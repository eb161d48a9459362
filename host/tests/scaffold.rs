//! `codexcontinue plugins new` as an author runs it: the files it writes for each kind, the SDK
//! it points them at, and the names and folders it refuses. Building and running what it writes
//! is `examples/walkthrough.sh`'s job (`cargo xtask test`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use codexcontinue::plugins::{Kind, Manifest};

/// Runs `plugins new ARGS` in `cwd`.
fn plugins_new(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_codexcontinue"))
        .current_dir(cwd)
        .env("CODEXCONTINUE_CONFIG", "/nonexistent/codexcontinue.toml")
        .args(["plugins", "new"])
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The manifest a scaffolded crate carries, parsed by the host's own validator.
fn manifest(dir: &Path, id: &str) -> Manifest {
    let path = dir.join(format!("{id}.toml"));
    Manifest::parse(&path, &read(dir, &format!("{id}.toml")), 512).unwrap_or_else(|e| panic!("{id}.toml: {e}"))
}

/// Run from a checkout, `plugins new` writes a complete provider crate into `--dir` whose
/// manifest the host accepts, wired to this checkout's SDK and harness by path.
#[test]
fn provider_crate_from_a_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my-vendor");
    let out = plugins_new(&common::root(), &["my-vendor", "--kind", "provider", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("created provider plugin my-vendor"), "{}", text(&out));

    for file in [
        "Cargo.toml",
        ".cargo/config.toml",
        ".gitignore",
        "rustfmt.toml",
        "my-vendor.toml",
        "src/lib.rs",
        "tests/vendor.rs",
        "examples/mock-vendor.rs",
        "README.md",
    ] {
        assert!(dir.join(file).is_file(), "{file} is missing");
    }
    let manifest = manifest(&dir, "my-vendor");
    assert_eq!((manifest.id.as_str(), manifest.kind), ("my-vendor", Kind::Provider));
    assert_eq!(manifest.wit, codexcontinue::runtime::Wit::LATEST.version(), "new plugins target the latest WIT");
    assert_eq!(manifest.secrets["MY_VENDOR_API_KEY"], ["https://api.example.com"]);
    assert_eq!(manifest.env["base_url"], "MY_VENDOR_BASE_URL");

    let sdk = common::root().join("sdk").canonicalize().unwrap();
    let cargo = read(&dir, "Cargo.toml");
    assert!(cargo.contains(&format!("codexcontinue-sdk = {{ path = \"{}/codexcontinue-sdk\" }}", sdk.display())));
    assert!(cargo.contains(&format!(
        "codexcontinue-sdk-testing = {{ path = \"{}/codexcontinue-sdk-testing\" }}",
        sdk.display()
    )));
    assert!(cargo.contains("[workspace]") && cargo.contains("crate-type = [\"cdylib\"]"), "{cargo}");
    assert!(read(&dir, ".cargo/config.toml").contains("target = \"wasm32-wasip2\""));
    let lib = read(&dir, "src/lib.rs");
    assert!(lib.contains("struct MyVendor;") && lib.contains("export_provider!(MyVendor);"), "{lib}");
    assert!(lib.contains("secret(\"MY_VENDOR_API_KEY\")"), "{lib}");
    assert!(read(&dir, "README.md").contains("cp target/wasm32-wasip2/release/my_vendor.wasm my-vendor.wasm"));
    assert_formatted(&dir, &["src/lib.rs", "tests/vendor.rs", "examples/mock-vendor.rs"]);
}

/// A memory crate gets a memory manifest (Redis addresses allowed, URL overridable) and a
/// store over the `redis` capability.
#[test]
fn memory_crate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("team-memory");
    let out = plugins_new(&common::root(), &["team-memory", "--kind", "memory", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    let manifest = manifest(&dir, "team-memory");
    assert_eq!(manifest.kind, Kind::Memory);
    assert!(manifest.allowed_hosts.contains(&"redis://127.0.0.1:6379".to_string()));
    assert_eq!(manifest.env["redis_url"], "TEAM_MEMORY_REDIS_URL");
    let lib = read(&dir, "src/lib.rs");
    assert!(lib.contains("impl MemoryStore for TeamMemory") && lib.contains("export_memory_store!(TeamMemory);"));
    assert!(dir.join("tests/store.rs").is_file() && !dir.join("examples").exists());
    assert_formatted(&dir, &["src/lib.rs", "tests/store.rs"]);
}

/// Outside a checkout the SDK comes from git, with a comment saying how to use a local one; the
/// default folder is `./<name>`.
#[test]
fn outside_a_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let out = plugins_new(tmp.path(), &["elsewhere", "--kind", "provider"]);
    assert!(out.status.success(), "{}", text(&out));
    let cargo = read(&tmp.path().join("elsewhere"), "Cargo.toml");
    assert!(
        cargo.contains("codexcontinue-sdk = { git = \"https://github.com/codexcontinue/codexcontinue\" }"),
        "{cargo}"
    );
    assert!(cargo.contains("# To build against a local checkout instead"), "{cargo}");
    assert!(!tmp.path().join("elsewhere/Cargo.lock").exists());
}

/// Invalid ids and folders with something in them are refused with a message, and nothing is
/// written.
#[test]
fn refusals() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, why) in [
        ("My-Vendor", "lowercase letters, digits and dashes"),
        ("my_vendor", "lowercase letters, digits and dashes"),
        ("-vendor", "lowercase letters, digits and dashes"),
        ("2fast", "start with a letter"),
        ("type", "Rust keyword"),
    ] {
        // `--` so that clap takes `-vendor` as the name rather than a flag.
        let out = plugins_new(tmp.path(), &["--kind", "provider", "--", name]);
        let said = text(&out);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(said.contains("is not a valid plugin id") && said.contains(why), "{name}: {said}");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "a refused name wrote something");

    let taken = tmp.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let out = plugins_new(tmp.path(), &["taken", "--kind", "memory"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("exists and is not empty"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1);

    let out = plugins_new(tmp.path(), &["kindless"]);
    assert!(!out.status.success() && text(&out).contains("--kind"), "{}", text(&out));
}

/// The generated sources are already formatted under the crate's own rustfmt.toml.
fn assert_formatted(dir: &Path, files: &[&str]) {
    let out = Command::new("rustfmt")
        .current_dir(dir)
        .args(["--check", "--config-path", "rustfmt.toml"])
        .args(files)
        .output()
        .expect("rustfmt runs");
    assert!(out.status.success(), "{}", text(&out));
}
