//! Released WIT folders are frozen: plugins built against them must keep loading, so not one
//! byte of them may change. Every file's sha256 is pinned here; a deliberate new version gets a
//! new folder (and, once released, a new entry below), never an edit.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Every released version: (folder, [(file, sha256)]).
const RELEASED: &[(&str, &[(&str, &str)])] = &[(
    "v0.1.0",
    &[
        ("databases.wit", "7b44669cf0c555570d7bd90003be8193f30923c69b617f4c9fef77f69dc0d16e"),
        ("host.wit", "5ebe14093ba49f28e0671ed2437525b91c9963ba11f89db4bb08bb10eda72157"),
        ("http-client.wit", "589e14f83f3e07384d9cbb4f1ab1890d2c6a677aa3efac4e2e6bed902844e485"),
        ("memory-store.wit", "e90ee717f28571846bea9819e3b701e64adf43ee5b98e5a24949f94f9afa3087"),
        ("provider.wit", "7f45c63ea27c79f2cce92469e9579e813b5a6af447d1e7046c446ef99f08b4c8"),
        ("types.wit", "2a9a93f4b7eeb6825f256e1aeeb3457524541a4c10fd2a5c48d33b07c1dfb9a1"),
        ("worlds.wit", "64c6bfb04fb3bcd4c8fa4d49585acae1a5b0849d293cf42cd606758e6f1607ca"),
    ],
)];

/// The one version still open for changes, if any. When it is released, pin its hashes in
/// `RELEASED` and set this to the next version (or `None`).
const UNRELEASED: Option<&str> = Some("v0.2.0");

fn wit_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// sha256 of every file in `dir`, by file name (folders are flat).
fn hashes(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            assert!(path.is_file(), "{} is not a file: WIT folders are flat", path.display());
            let bytes = std::fs::read(&path).unwrap();
            (path.file_name().unwrap().to_string_lossy().into_owned(), format!("{:x}", Sha256::digest(bytes)))
        })
        .collect()
}

/// Every released folder holds exactly its pinned files, byte for byte.
#[test]
fn released_wit_folders_are_unchanged() {
    for (version, files) in RELEASED {
        let pinned: BTreeMap<String, String> = files.iter().map(|(f, h)| (f.to_string(), h.to_string())).collect();
        let found = hashes(&wit_dir().join(version));
        assert_eq!(
            found, pinned,
            "wit/{version} is released and frozen: put changes in a new version folder (see wit/PENDING.md)"
        );
    }
}

/// No version folder escapes the check: each is pinned as released or is the one unreleased.
#[test]
fn every_wit_folder_is_pinned_or_the_unreleased_one() {
    for entry in std::fs::read_dir(wit_dir()).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            RELEASED.iter().any(|(v, _)| *v == name) || UNRELEASED == Some(name.as_str()),
            "wit/{name} is neither pinned in RELEASED nor the UNRELEASED version"
        );
    }
}

/// Every folder the host loads is one of them, and the host loads every released one.
#[test]
fn the_host_loads_every_released_version() {
    let supported: Vec<String> =
        codexcontinue::runtime::bindings::SUPPORTED.iter().map(|wit| format!("v{wit}")).collect();
    for (version, _) in RELEASED {
        assert!(supported.contains(&version.to_string()), "the host no longer loads released WIT {version}");
    }
    for version in &supported {
        assert!(wit_dir().join(version).is_dir(), "the host binds {version}, which has no wit/ folder");
    }
}
