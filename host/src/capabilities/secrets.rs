//! Secret placeholders: plugins write `{{secret:NAME}}`, the host substitutes the value at egress,
//! and only for destinations the manifest binds to that secret. Values come from the
//! environment and never enter a guest's memory, a log line or an error.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use reqwest::Url;

use super::hosts::{AllowedHosts, origin};
use super::mask::Masker;

const OPEN: &str = "{{secret:";
const CLOSE: &str = "}}";

/// A secret value; its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a placeholder was not substituted. Messages name the secret and the destination only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name} may not be sent to {destination}; the manifest binds it to other hosts")]
    NotAllowed { name: String, destination: String },
    #[error("secret {name} is not declared in the manifest's [secrets] table")]
    Undeclared { name: String },
    #[error("secret {name} is not set; set it in the environment or .env")]
    Unset { name: String },
    #[error("unterminated secret placeholder")]
    Malformed,
}

/// The secrets one plugin may use, with their values and the destinations bound to each.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    bound: BTreeMap<String, (Option<Secret>, AllowedHosts)>,
    /// Masks every value above in what the plugin hands back.
    masker: Arc<Masker>,
}

impl Secrets {
    /// Reads each declared secret through `lookup` (the environment, in production).
    pub fn new(bindings: BTreeMap<String, AllowedHosts>, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let bound = bindings
            .into_iter()
            .map(|(name, hosts)| {
                let value = lookup(&name).filter(|v| !v.is_empty()).map(Secret);
                (name, (value, hosts))
            })
            .collect::<BTreeMap<_, _>>();
        let values = bound.iter().filter_map(|(name, (value, _))| Some((name.as_str(), value.as_ref()?.0.as_str())));
        let masker = Arc::new(Masker::new(values));
        Self { bound, masker }
    }

    /// The masker for this plugin's secret values, applied to everything it hands back.
    pub fn masker(&self) -> &Arc<Masker> {
        &self.masker
    }

    /// Declared secrets that have no value.
    pub fn missing(&self) -> Vec<&str> {
        self.bound.iter().filter(|(_, (v, _))| v.is_none()).map(|(k, _)| k.as_str()).collect()
    }

    /// Each declared secret with the destinations it is bound to and whether it has a value.
    pub fn bindings(&self) -> impl Iterator<Item = (&str, &AllowedHosts, bool)> {
        self.bound.iter().map(|(name, (value, hosts))| (name.as_str(), hosts, value.is_some()))
    }

    /// Declared secret names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.bound.keys().map(String::as_str)
    }

    /// Also allows every secret to go to `pattern` (an operator's `*_BASE_URL` override).
    pub fn bind_all_to(&mut self, pattern: &super::hosts::HostPattern) {
        for (_, hosts) in self.bound.values_mut() {
            hosts.push_operator(pattern.clone());
        }
    }

    /// `text` with every secret value replaced by `[redacted:NAME]`: what a plugin reports may
    /// quote a vendor that echoed our headers back, and must still never show a key.
    pub fn redact(&self, text: &str) -> String {
        self.masker.mask(text).into_owned()
    }

    /// Replaces every placeholder in `text` with its value, if each may go to `destination`.
    pub fn substitute(&self, text: &str, destination: &Url) -> Result<String, SecretError> {
        if !text.contains(OPEN) {
            return Ok(text.to_string());
        }
        let mut out = String::with_capacity(text.len() + 64);
        let mut rest = text;
        while let Some(start) = rest.find(OPEN) {
            out.push_str(&rest[..start]);
            let after = &rest[start + OPEN.len()..];
            let end = after.find(CLOSE).ok_or(SecretError::Malformed)?;
            let name = &after[..end];
            let (value, hosts) =
                self.bound.get(name).ok_or_else(|| SecretError::Undeclared { name: name.to_string() })?;
            if !hosts.allows(destination) {
                return Err(SecretError::NotAllowed { name: name.to_string(), destination: origin(destination) });
            }
            let value = value.as_ref().ok_or_else(|| SecretError::Unset { name: name.to_string() })?;
            out.push_str(&value.0);
            rest = &after[end + CLOSE.len()..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Whether `text` holds a placeholder.
pub fn has_placeholder(text: &str) -> bool {
    text.contains(OPEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        let mut bindings = BTreeMap::new();
        bindings.insert("OPENAI_API_KEY".to_string(), AllowedHosts::parse(&["https://api.openai.com"]).unwrap());
        bindings.insert("UNSET_KEY".to_string(), AllowedHosts::parse(&["https://api.openai.com"]).unwrap());
        Secrets::new(bindings, |name| (name == "OPENAI_API_KEY").then(|| "sk-test-123".to_string()))
    }

    /// The value goes to a bound destination.
    #[test]
    fn substitutes_for_bound_hosts() {
        let url: Url = "https://api.openai.com/v1/chat/completions".parse().unwrap();
        let out = secrets().substitute("Bearer {{secret:OPENAI_API_KEY}}", &url).unwrap();
        assert_eq!(out, "Bearer sk-test-123");
    }

    /// Any other destination gets a denial naming the secret and host, never the value.
    #[test]
    fn refuses_other_hosts() {
        let url: Url = "https://evil.example/steal".parse().unwrap();
        let err = secrets().substitute("Bearer {{secret:OPENAI_API_KEY}}", &url).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("OPENAI_API_KEY") && msg.contains("evil.example"), "{msg}");
        assert!(!msg.contains("sk-test-123"));
        assert!(!format!("{:?}", secrets()).contains("sk-test-123"));
    }

    /// Secret values are masked wherever they appear in a text.
    #[test]
    fn redacts_values() {
        assert_eq!(
            secrets().redact("echo: Bearer sk-test-123, again sk-test-123"),
            "echo: Bearer [redacted:OPENAI_API_KEY], again [redacted:OPENAI_API_KEY]"
        );
        assert_eq!(secrets().redact("nothing here"), "nothing here");
    }

    /// Undeclared, unset and unterminated placeholders are errors, not passed through.
    #[test]
    fn refuses_unknown_unset_and_malformed() {
        let url: Url = "https://api.openai.com/".parse().unwrap();
        let s = secrets();
        assert!(matches!(s.substitute("{{secret:OTHER}}", &url), Err(SecretError::Undeclared { .. })));
        assert!(matches!(s.substitute("{{secret:UNSET_KEY}}", &url), Err(SecretError::Unset { .. })));
        assert!(matches!(s.substitute("{{secret:OPENAI_API_KEY", &url), Err(SecretError::Malformed)));
        assert_eq!(s.missing(), vec!["UNSET_KEY"]);
    }
}
