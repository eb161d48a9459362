//! Plugin manifests (`<id>.toml` beside `<id>.wasm`): parsed strictly, so a typo is an error
//! naming the file and the field rather than a setting silently ignored.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::registry::Rollout;
use crate::capabilities::grants;
use crate::capabilities::hosts::AllowedHosts;
use crate::runtime::{Limits, WorldKind};

/// A plugin's declaration of what it is and what it may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lowercase letters, digits and dashes; equals the file stem.
    pub id: String,
    /// The plugin's own version.
    pub version: semver::Version,
    pub kind: Kind,
    /// The WIT package version the plugin was built against.
    pub wit: semver::Version,
    #[serde(default)]
    pub description: String,
    /// Marks the offline demo provider, so replies and logs say so.
    #[serde(default)]
    pub demo: bool,
    /// Origins the plugin may reach (`https://api.openai.com`, `https://*.openai.azure.com`).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Secret name -> origins its value may be sent to.
    #[serde(default)]
    pub secrets: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Non-secret values the plugin reads with `config.get`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Config key -> environment variable that overrides it (e.g. `base_url = "OPENAI_BASE_URL"`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Config keys that must have a value for the plugin to work (e.g. Azure's `endpoint`);
    /// until they do, the provider is reported as not configured and never picked by default.
    #[serde(default)]
    pub required_config: Vec<String>,
    /// How new versions of this plugin are rolled out; overrides the server's `[rollout]`.
    pub rollout: Option<Rollout>,
}

/// The manifest's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Provider,
    Memory,
}

impl Kind {
    /// The runtime world this kind of plugin implements.
    pub fn world(self) -> WorldKind {
        match self {
            Kind::Provider => WorldKind::Provider,
            Kind::Memory => WorldKind::Memory,
        }
    }
}

/// The manifest's `[limits]` table; unset fields take the runtime defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    pub memory_mb: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub max_concurrency: Option<u32>,
}

/// Why a manifest was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ManifestError {
    pub message: String,
}

fn invalid(field: &str, why: impl std::fmt::Display) -> ManifestError {
    ManifestError { message: format!("field `{field}`: {why}") }
}

impl Manifest {
    /// Parses and validates the manifest at `path` from `text`.
    pub fn parse(path: &Path, text: &str, max_memory_mb: u32) -> Result<Self, ManifestError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError { message: e.to_string().trim().replace('\n', " ") })?;
        manifest.validate(path, max_memory_mb)?;
        Ok(manifest)
    }

    fn validate(&self, path: &Path, max_memory_mb: u32) -> Result<(), ManifestError> {
        if !is_id(&self.id) {
            return Err(invalid("id", format!("{:?} must be lowercase letters, digits and dashes", self.id)));
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if stem != self.id {
            return Err(invalid("id", format!("{:?} must match the file name {stem:?}", self.id)));
        }
        self.allowed_hosts().map_err(|e| invalid("allowed_hosts", e))?;
        for (name, hosts) in &self.secrets {
            if !is_env_name(name) {
                return Err(invalid(
                    &format!("secrets.{name}"),
                    "a secret name is an environment variable name (A-Z, 0-9, _)",
                ));
            }
            if HOST_CREDENTIALS.contains(&name.as_str()) {
                return Err(invalid(
                    &format!("secrets.{name}"),
                    format!("{name} is the host's own credential; no plugin may send it anywhere"),
                ));
            }
            AllowedHosts::parse(hosts).map_err(|e| invalid(&format!("secrets.{name}"), e))?;
            if let Some(refusal) = grants::forbidden(&self.id, name) {
                return Err(invalid(&format!("secrets.{name}"), refusal));
            }
        }
        for (key, var) in &self.env {
            if !is_env_name(var) {
                return Err(invalid(&format!("env.{key}"), format!("{var:?} is not an environment variable name")));
            }
            if looks_like_credential(var) {
                return Err(invalid(
                    &format!("env.{key}"),
                    format!("{var} looks like a credential; plugins use credentials only as [secrets] placeholders"),
                ));
            }
            if self.secrets.contains_key(var) {
                return Err(invalid(
                    &format!("env.{key}"),
                    format!("{var} is a secret; secrets are never readable as config"),
                ));
            }
            // Another vendor's variable (its endpoint override above all) is never this plugin's.
            if let Some(refusal) = grants::forbidden(&self.id, var) {
                return Err(invalid(&format!("env.{key}"), refusal));
            }
        }
        let l = &self.limits;
        check_range("limits.memory_mb", l.memory_mb, 1, max_memory_mb.into())?;
        check_range("limits.timeout_ms", l.timeout_ms, 1, 3_600_000)?;
        check_range("limits.cpu_ms", l.cpu_ms, 1, 600_000)?;
        check_range("limits.max_concurrency", l.max_concurrency, 1, 4096)?;
        if let Some(rollout) = &self.rollout {
            rollout.validate().map_err(|e| invalid("rollout", e))?;
        }
        Ok(())
    }

    /// The parsed allow-list.
    pub fn allowed_hosts(&self) -> Result<AllowedHosts, crate::capabilities::hosts::PatternError> {
        AllowedHosts::parse(&self.allowed_hosts)
    }

    /// The limits, with defaults for what the manifest leaves out.
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        let l = &self.limits;
        Limits {
            memory_mb: l.memory_mb.unwrap_or(d.memory_mb),
            timeout: l.timeout_ms.map(Duration::from_millis).unwrap_or(d.timeout),
            cpu: l.cpu_ms.map(Duration::from_millis).unwrap_or(d.cpu),
            max_concurrency: l.max_concurrency.unwrap_or(d.max_concurrency),
        }
    }
}

fn check_range<T: Into<u64> + Copy>(field: &str, value: Option<T>, min: u64, max: u64) -> Result<(), ManifestError> {
    match value.map(Into::into) {
        Some(v) if v < min || v > max => Err(invalid(field, format!("{v} is outside {min}..={max}"))),
        _ => Ok(()),
    }
}

/// Whether `id` is a valid plugin id: lowercase letters, digits and dashes, at most 64, not
/// starting with a dash.
pub fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

/// The host's own secrets: client API keys and the admin token.
const HOST_CREDENTIALS: [&str; 2] = ["CODEXCONTINUE_API_KEYS", "CODEXCONTINUE_ADMIN_TOKEN"];

/// Whether a variable holds a credential, by the names vendors and we give them
/// (`OPENAI_API_KEY`, `CO_API_KEY`, `GITHUB_TOKEN`, ...). `[env]` values enter the plugin's
/// memory as config, so no plugin may read these there, not even another plugin's.
fn looks_like_credential(var: &str) -> bool {
    HOST_CREDENTIALS.contains(&var)
        || ["_KEY", "_KEYS", "_TOKEN", "_SECRET", "_PASSWORD"].iter().any(|suffix| var.ends_with(suffix))
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("plugins/demo.toml"), text, 512)
    }

    const MINIMAL: &str = "id = \"demo\"\nversion = \"0.1.0\"\nkind = \"provider\"\nwit = \"0.1.0\"\n";

    /// A minimal manifest parses and takes default limits and an empty allow-list.
    #[test]
    fn minimal_manifest() {
        let m = parse(MINIMAL).unwrap();
        assert_eq!(m.kind, Kind::Provider);
        assert_eq!(m.limits(), Limits::default());
        assert_eq!(m.allowed_hosts().unwrap().iter().count(), 0);
    }

    /// Unknown keys, wrong types and bad values name the field.
    #[test]
    fn errors_name_the_field() {
        let cases = [
            (format!("{MINIMAL}colour = \"red\"\n"), "colour"),
            (format!("{MINIMAL}[limits]\nmemory = 3\n"), "memory"),
            (format!("{MINIMAL}[limits]\nmemory_mb = 100000\n"), "limits.memory_mb"),
            (format!("{MINIMAL}[limits]\ntimeout_ms = \"soon\"\n"), "timeout_ms"),
            (format!("{MINIMAL}allowed_hosts = [\"*\"]\n"), "allowed_hosts"),
            (format!("{MINIMAL}[secrets]\nkey = [\"https://a.com\"]\n"), "secrets.key"),
            (format!("{MINIMAL}[secrets]\nKEY = [\"https://*\"]\n"), "secrets.KEY"),
            (format!("{MINIMAL}[env]\nbase_url = \"not a var\"\n"), "env.base_url"),
            // Another vendor's key, or the host's own credentials, are never config.
            (format!("{MINIMAL}[env]\nx = \"OPENAI_API_KEY\"\n"), "`env.x`: OPENAI_API_KEY looks like a credential"),
            (format!("{MINIMAL}[env]\nx = \"GITHUB_TOKEN\"\n"), "`env.x`: GITHUB_TOKEN looks like a credential"),
            (format!("{MINIMAL}[env]\nx = \"CODEXCONTINUE_API_KEYS\"\n"), "env.x"),
            (format!("{MINIMAL}[secrets]\nCODEXCONTINUE_ADMIN_TOKEN = [\"https://a.com\"]\n"), "host's own credential"),
            // Vendors' variables are their plugins' alone; the host's are nobody's.
            (format!("{MINIMAL}[env]\nbase_url = \"OPENAI_BASE_URL\"\n"), "belongs to the openai plugin"),
            (format!("{MINIMAL}[env]\nurl = \"DATABASE_URL\"\n"), "belongs to the postgres-memory plugin"),
            (format!("{MINIMAL}[env]\nbind = \"CODEXCONTINUE_BIND\"\n"), "the host's own setting"),
            (
                format!("{MINIMAL}[secrets]\nANTHROPIC_API_KEY = [\"https://evil.example\"]\n"),
                "`secrets.ANTHROPIC_API_KEY`",
            ),
            (MINIMAL.replace("provider", "printer"), "kind"),
            (MINIMAL.replace("\"0.1.0\"\nkind", "\"one\"\nkind"), "version"),
            (MINIMAL.replace("id = \"demo\"", "id = \"other\""), "file name"),
        ];
        for (text, field) in cases {
            let err = parse(&text).unwrap_err().message;
            assert!(err.contains(field), "expected {field:?} in {err:?}");
        }
    }

    /// Property tests: whatever text or values a manifest holds, parsing never panics and a
    /// refusal is one line naming the field. Bounded, seeded and not persisted, so CI runs the
    /// same cases each time.
    mod properties {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        use toml::Value;

        use super::*;

        fn runner() -> TestRunner {
            let config = Config { cases: 256, failure_persistence: None, ..Config::default() };
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[14; 32]))
        }

        /// A refusal is a non-empty single line (it goes into `/status` and one log line).
        fn one_line(error: &ManifestError) -> Result<(), TestCaseError> {
            prop_assert!(!error.message.trim().is_empty(), "empty error");
            prop_assert!(!error.message.contains('\n'), "multi-line error: {:?}", error.message);
            Ok(())
        }

        /// Lines that look like a manifest: known keys and sections, odd keys, odd values.
        fn tomlish() -> impl Strategy<Value = String> {
            let key = prop_oneof![
                prop::sample::select(vec![
                    "id",
                    "version",
                    "kind",
                    "wit",
                    "description",
                    "demo",
                    "allowed_hosts",
                    "memory_mb",
                    "timeout_ms",
                    "cpu_ms",
                    "max_concurrency",
                    "base_url",
                    "OPENAI_API_KEY",
                    "share",
                    "requests",
                ])
                .prop_map(str::to_string),
                "[A-Za-z_\\-\"\\. ]{0,12}",
            ];
            let value = prop_oneof![
                "\"[^\"\\n]{0,24}\"",
                any::<i64>().prop_map(|n| n.to_string()),
                Just("18446744073709551616".to_string()),
                Just("nan".to_string()),
                Just("-inf".to_string()),
                Just("[\"https://*\", 1, true]".to_string()),
                Just("{ a = { b = [] } }".to_string()),
                Just("\"\"\"\n\u{0}\u{202e}\"\"\"".to_string()),
                ".{0,16}",
            ];
            let line = prop_oneof![
                4 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
                1 => prop::sample::select(vec!["[limits]", "[secrets]", "[env]", "[config]", "[rollout]", "[[limits]]", "[", "]"])
                    .prop_map(str::to_string),
                1 => any::<String>(),
            ];
            prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
        }

        /// Arbitrary and TOML-ish text, alone or after a valid manifest: never a panic, and a
        /// refusal is one non-empty line.
        #[test]
        fn arbitrary_text_never_panics() {
            let text = prop_oneof![any::<String>(), tomlish(), tomlish().prop_map(|t| format!("{MINIMAL}{t}")),];
            runner()
                .run(&text, |text| match parse(&text) {
                    Ok(m) => {
                        prop_assert_eq!(m.id, "demo");
                        Ok(())
                    }
                    Err(e) => one_line(&e),
                })
                .unwrap();
        }

        /// Values no field expects: wrong types, huge and negative numbers, NaN, odd unicode,
        /// nested arrays and tables.
        fn hostile() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                any::<i64>().prop_map(Value::Integer),
                any::<f64>().prop_map(Value::Float),
                any::<bool>().prop_map(Value::Boolean),
                any::<String>().prop_map(Value::String),
                Just(Value::String(String::new())),
                Just(Value::String("*".into())),
                Just(Value::String("https://*".into())),
                Just(Value::String("http://127.0.0.1:9".into())),
                Just(Value::String("OPENAI_BASE_URL".into())),
                Just(Value::String("CODEXCONTINUE_ADMIN_TOKEN".into())),
                Just(Value::Integer(-1)),
                Just(Value::Integer(0)),
                Just(Value::Integer(i64::from(u32::MAX) + 1)),
            ];
            leaf.prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                        .prop_map(|m| Value::Table(m.into_iter().collect())),
                ]
            })
        }

        /// Where a hostile value goes, and what the refusal must then name.
        fn target() -> impl Strategy<Value = (Vec<String>, String)> {
            let top = prop::sample::select(vec![
                "id",
                "version",
                "kind",
                "wit",
                "description",
                "demo",
                "allowed_hosts",
                "required_config",
            ])
            .prop_map(|k| (vec![k.to_string()], k.to_string()));
            let limit = prop::sample::select(vec!["memory_mb", "timeout_ms", "cpu_ms", "max_concurrency"])
                .prop_map(|k| (vec!["limits".to_string(), k.to_string()], k.to_string()));
            let rollout = prop::sample::select(vec!["share", "requests", "max_error_rate"])
                .prop_map(|k| (vec!["rollout".to_string(), k.to_string()], k.to_string()));
            // Keys in the free-form tables, bare so the refusal can quote them as written.
            let keyed = (prop::sample::select(vec!["config", "env", "secrets"]), "[A-Za-z_][A-Za-z0-9_]{0,15}")
                .prop_map(|(table, key)| (vec![table.to_string(), key.clone()], key));
            prop_oneof![top, limit, rollout, keyed]
        }

        /// A valid manifest with one field set to a hostile value: never a panic, and a
        /// refusal names that field.
        #[test]
        fn hostile_values_are_refused_naming_the_field() {
            runner()
                .run(&(target(), hostile()), |((path, field), value)| {
                    let mut manifest: toml::Table = toml::from_str(MINIMAL).unwrap();
                    let mut table = &mut manifest;
                    for part in &path[..path.len() - 1] {
                        let entry = table.entry(part.clone()).or_insert_with(|| Value::Table(Default::default()));
                        table = entry.as_table_mut().unwrap();
                    }
                    table.insert(path[path.len() - 1].clone(), value);
                    let Ok(text) = toml::to_string(&manifest) else { return Ok(()) };
                    if let Err(e) = parse(&text) {
                        one_line(&e)?;
                        prop_assert!(e.message.contains(&field), "{field:?} not named in {:?}\n{text}", e.message);
                    }
                    Ok(())
                })
                .unwrap();
        }
    }
}
