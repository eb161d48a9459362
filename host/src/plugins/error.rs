//! Staging errors: every failure names the file, the step and the reason.

use std::fmt;
use std::path::PathBuf;

/// The named steps a plugin goes through before it may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Reading the manifest and the wasm file.
    Read,
    /// Parsing and validating the manifest.
    Manifest,
    /// Compiling the component (or loading it from the cache).
    Compile,
    /// Checking the exported interface against the manifest and the supported WIT versions.
    Version,
    /// Resolving the component's imports against the host.
    Link,
    /// Calling the plugin's `info()`.
    SelfCheck,
    /// Serving its first calls as a candidate next to the stable version.
    Rollout,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Read => "read",
            Step::Manifest => "manifest",
            Step::Compile => "compile",
            Step::Version => "version",
            Step::Link => "link",
            Step::SelfCheck => "self-check",
            Step::Rollout => "rollout",
        })
    }
}

/// A plugin that could not be staged. The working version, if any, keeps serving.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {step} failed: {reason}", file.display())]
pub struct Error {
    pub file: PathBuf,
    pub step: Step,
    pub reason: String,
}
