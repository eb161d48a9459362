//! `codexcontinue plugins new`: writes a new plugin crate (provider or memory) from the
//! templates in `host/templates/`, with its manifest, a harness test and a README, wired to the
//! SDK of the checkout it is created in when there is one. It refuses a folder that already has
//! anything in it and never touches a server or its plugins directory.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::plugins::manifest::is_id;

/// Where the SDK comes from when the crate is created outside a checkout.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

/// Names cargo or rustc refuse for a crate: Rust keywords and the built-in crates.
const RESERVED: &str = "\
    abstract alloc as async await become box break const continue core crate do dyn else enum extern false final \
    fn for gen if impl in let loop macro match mod move mut override priv proc-macro pub ref return self static std \
    struct super test trait true try type typeof unsafe unsized use virtual where while yield";

/// `codexcontinue plugins new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin id: lowercase letters, digits and dashes, starting with a letter (`my-vendor`).
    pub name: String,
    /// What the plugin does: answer chats (`provider`) or keep conversations (`memory`).
    #[arg(long, value_enum)]
    pub kind: Template,
    /// The folder to create (default `./<name>`); it must not exist or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The kinds of plugin there is a template for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// An LLM provider mapping a vendor's HTTP API.
    Provider,
    /// A memory store over the host's `redis` capability.
    Memory,
}

/// Why no crate was written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name breaks the id rules; `why` says which.
    #[error("{name:?} is not a valid plugin id: {why}")]
    InvalidName { name: String, why: &'static str },
    /// The folder already has files in it.
    #[error("{}: the folder exists and is not empty; choose another --dir or remove it first", .0.display())]
    NotEmpty(PathBuf),
    /// A file or folder could not be read or written.
    #[error("{}: {error}", .path.display())]
    Io { path: PathBuf, error: std::io::Error },
}

/// A crate that was written.
#[derive(Debug)]
pub struct Scaffold {
    /// The crate's folder, absolute.
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<String>,
    /// The checkout whose SDK the crate depends on by path, if it was created inside one.
    pub checkout: Option<PathBuf>,
}

/// A file of a template: where it goes (which may name the plugin) and its text.
struct File {
    path: &'static str,
    text: &'static str,
}

const COMMON: &[File] = &[
    File { path: "Cargo.toml", text: include_str!("../templates/common/Cargo.toml.tmpl") },
    File { path: ".cargo/config.toml", text: include_str!("../templates/common/cargo-config.toml.tmpl") },
    File { path: ".gitignore", text: include_str!("../templates/common/gitignore.tmpl") },
    File { path: "rustfmt.toml", text: include_str!("../templates/common/rustfmt.toml.tmpl") },
];

const PROVIDER: &[File] = &[
    File { path: "{{id}}.toml", text: include_str!("../templates/provider/manifest.toml.tmpl") },
    File { path: "src/lib.rs", text: include_str!("../templates/provider/lib.rs.tmpl") },
    File { path: "tests/vendor.rs", text: include_str!("../templates/provider/test.rs.tmpl") },
    File { path: "examples/mock-vendor.rs", text: include_str!("../templates/provider/mock-vendor.rs.tmpl") },
    File { path: "README.md", text: include_str!("../templates/provider/README.md.tmpl") },
];

const MEMORY: &[File] = &[
    File { path: "{{id}}.toml", text: include_str!("../templates/memory/manifest.toml.tmpl") },
    File { path: "src/lib.rs", text: include_str!("../templates/memory/lib.rs.tmpl") },
    File { path: "tests/store.rs", text: include_str!("../templates/memory/test.rs.tmpl") },
    File { path: "README.md", text: include_str!("../templates/memory/README.md.tmpl") },
];

/// Runs `plugins new`: writes the crate and says what to do next.
pub fn run(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let scaffold = match new_plugin(args, &cwd) {
        Ok(scaffold) => scaffold,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let shown = scaffold.dir.strip_prefix(&cwd).unwrap_or(&scaffold.dir).display().to_string();
    let shown = if shown.is_empty() { ".".to_string() } else { shown };
    let kind = match args.kind {
        Template::Provider => "provider",
        Template::Memory => "memory",
    };
    println!("created {kind} plugin {} in {shown}: {}", args.name, scaffold.files.join(", "));
    match &scaffold.checkout {
        Some(checkout) => println!("it uses the SDK of the checkout in {}", checkout.display()),
        None => println!("it takes the SDK from {REPOSITORY} (see the comment in Cargo.toml)"),
    }
    println!("next (see {shown}/README.md):");
    println!("  cd {shown}");
    println!("  cargo test --target host-tuple");
    println!("  cargo build --release");
    Ok(ExitCode::SUCCESS)
}

/// Writes the crate for `args`, resolving a relative `--dir` against `cwd`.
///
/// # Errors
///
/// An invalid id, a folder that is not empty, or a file that cannot be written.
pub fn new_plugin(args: &NewArgs, cwd: &Path) -> Result<Scaffold, Error> {
    check_name(&args.name)?;
    let dir = cwd.join(args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name)));
    match std::fs::read_dir(&dir).map(|mut entries| entries.next().is_some()) {
        Ok(true) => return Err(Error::NotEmpty(dir)),
        Ok(false) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io { path: dir, error: e }),
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), error: e })?;
    let dir = dir.canonicalize().map_err(|e| Error::Io { path: dir.clone(), error: e })?;
    let checkout = find_checkout(&dir).or_else(|| find_checkout(cwd));

    let values = Values::new(&args.name, args.kind, &dir, checkout.as_deref());
    let template = match args.kind {
        Template::Provider => PROVIDER,
        Template::Memory => MEMORY,
    };
    let mut files = Vec::new();
    for file in COMMON.iter().chain(template) {
        let path = values.render(file.path);
        write(&dir.join(&path), &values.render(file.text))?;
        files.push(path);
    }
    // Inside a checkout, start from the versions the examples are tested with: the harness
    // then builds exactly the host the project tests, and can share the examples' build cache.
    if let Some(lock) = checkout.as_ref().map(|c| c.join("examples/Cargo.lock")).filter(|l| l.is_file()) {
        std::fs::copy(&lock, dir.join("Cargo.lock")).map_err(|e| Error::Io { path: lock.clone(), error: e })?;
        files.push("Cargo.lock".into());
    }
    Ok(Scaffold { dir, files, checkout })
}

/// The manifest's id rules, plus what cargo needs of a crate name.
fn check_name(name: &str) -> Result<(), Error> {
    let invalid = |why| Err(Error::InvalidName { name: name.to_string(), why });
    if !is_id(name) {
        return invalid("use lowercase letters, digits and dashes (at most 64), as manifest ids do");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("it must start with a letter, as a Rust crate name does");
    }
    if RESERVED.split_whitespace().any(|word| word == name) {
        return invalid("it is a Rust keyword or the name of a built-in crate");
    }
    Ok(())
}

/// What the placeholders stand for in one crate.
struct Values(Vec<(&'static str, String)>);

impl Values {
    fn new(id: &str, kind: Template, dir: &Path, checkout: Option<&Path>) -> Self {
        let words = || id.split('-').filter(|w| !w.is_empty());
        let type_name = words()
            .map(|w| {
                let mut chars = w.chars();
                chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
            })
            .collect();
        let description = match kind {
            Template::Provider => format!("{id}: chat through the vendor's API"),
            Template::Memory => format!("{id}: conversation memory in Redis"),
        };
        let (sdk, testing) = dependencies(dir, checkout);
        Self(vec![
            ("{{id}}", id.to_string()),
            ("{{crate}}", id.replace('-', "_")),
            ("{{Type}}", type_name),
            ("{{ENV}}", id.replace('-', "_").to_ascii_uppercase()),
            ("{{description}}", description),
            ("{{sdk_dependency}}", sdk),
            ("{{testing_dependency}}", testing),
        ])
    }

    fn render(&self, template: &str) -> String {
        self.0.iter().fold(template.to_string(), |text, (key, value)| text.replace(key, value))
    }
}

/// The `codexcontinue-sdk` and `codexcontinue-sdk-testing` dependency lines: by path into the
/// checkout (relative when the crate sits inside it), else from git with a comment saying how
/// to point them elsewhere.
fn dependencies(dir: &Path, checkout: Option<&Path>) -> (String, String) {
    let Some(checkout) = checkout else {
        let sdk = format!(
            "# Created outside a CodexContinue checkout, so the SDK comes from its git repository.\n\
             # To build against a local checkout instead, write\n\
             #   codexcontinue-sdk = {{ path = \"<checkout>/sdk/codexcontinue-sdk\" }}\n\
             # (and the same for codexcontinue-sdk-testing below); add `tag = \"v<version>\"` or\n\
             # `rev = \"<commit>\"` to pin a release.\n\
             codexcontinue-sdk = {{ git = \"{REPOSITORY}\" }}"
        );
        return (sdk, format!("codexcontinue-sdk-testing = {{ git = \"{REPOSITORY}\" }}"));
    };
    let base = match dir.strip_prefix(checkout) {
        Ok(inside) => inside.components().map(|_| "..").collect::<Vec<_>>().join("/"),
        Err(_) => checkout.display().to_string(),
    };
    let path = |name: &str| toml::Value::from(format!("{base}/sdk/{name}")).to_string();
    (
        format!("codexcontinue-sdk = {{ path = {} }}", path("codexcontinue-sdk")),
        format!("codexcontinue-sdk-testing = {{ path = {} }}", path("codexcontinue-sdk-testing")),
    )
}

/// The checkout `dir` is in: the nearest ancestor holding the SDK and its harness, canonical
/// so that dependency paths carry no `..` of the caller's.
fn find_checkout(dir: &Path) -> Option<PathBuf> {
    let checkout = dir.ancestors().find(|a| {
        a.join("sdk/codexcontinue-sdk/Cargo.toml").is_file()
            && a.join("sdk/codexcontinue-sdk-testing/Cargo.toml").is_file()
    })?;
    checkout.canonicalize().ok()
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::Io { path: parent.to_path_buf(), error: e })?;
    }
    std::fs::write(path, text).map_err(|e| Error::Io { path: path.to_path_buf(), error: e })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, kind: Template) -> NewArgs {
        NewArgs { name: name.into(), kind, dir: None }
    }

    /// Ids follow the manifest's rules, start with a letter and are not Rust keywords.
    #[test]
    fn names() {
        assert!(check_name("my-vendor2").is_ok());
        for bad in ["My-Vendor", "my_vendor", "-x", "9lives", "fn", "", "a b"] {
            assert!(matches!(check_name(bad), Err(Error::InvalidName { .. })), "{bad:?} was accepted");
        }
    }

    /// Every placeholder is replaced, in names and text, and only `{{secret:..}}` remains.
    #[test]
    fn placeholders_are_all_replaced() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [Template::Provider, Template::Memory] {
            let name = match kind {
                Template::Provider => "my-vendor",
                Template::Memory => "my-store",
            };
            let scaffold = new_plugin(&args(name, kind), dir.path()).unwrap();
            for file in &scaffold.files {
                let text = std::fs::read_to_string(scaffold.dir.join(file)).unwrap();
                let left = text.matches("{{").count() - text.matches("{{secret:").count();
                assert_eq!(left, 0, "{file} keeps a placeholder");
            }
            let lib = std::fs::read_to_string(scaffold.dir.join("src/lib.rs")).unwrap();
            let type_name = if kind == Template::Provider { "struct MyVendor;" } else { "struct MyStore;" };
            assert!(lib.contains(type_name), "{lib}");
        }
    }

    /// Inside a checkout the SDK is a relative path; outside, an absolute one or git.
    #[test]
    fn dependency_paths() {
        let checkout = Path::new("/src/codexcontinue");
        let (sdk, testing) = dependencies(&checkout.join("plugins-wip/acme"), Some(checkout));
        assert_eq!(sdk, "codexcontinue-sdk = { path = \"../../sdk/codexcontinue-sdk\" }");
        assert_eq!(testing, "codexcontinue-sdk-testing = { path = \"../../sdk/codexcontinue-sdk-testing\" }");
        let (sdk, _) = dependencies(Path::new("/tmp/acme"), Some(checkout));
        assert_eq!(sdk, "codexcontinue-sdk = { path = \"/src/codexcontinue/sdk/codexcontinue-sdk\" }");
        let (sdk, testing) = dependencies(Path::new("/tmp/acme"), None);
        assert!(sdk.ends_with(&format!("codexcontinue-sdk = {{ git = \"{REPOSITORY}\" }}")), "{sdk}");
        assert!(sdk.lines().all(|l| l.starts_with('#') || l.starts_with("codexcontinue-sdk")), "{sdk}");
        assert_eq!(testing, format!("codexcontinue-sdk-testing = {{ git = \"{REPOSITORY}\" }}"));
    }
}
