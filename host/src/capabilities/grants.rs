//! Which environment variables a plugin may read, as config (`[env]`) or as secrets
//! (`[secrets]`), and who granted each. A vendor's variables (`OPENAI_*`, `DATABASE_URL`, ...)
//! belong to its plugin alone and the host's (`CODEXCONTINUE_*`) to the host; a plugin's own
//! namespace (`ACME_*` and `CODEXCONTINUE_ACME_*` for `acme`) is its own; anything else needs the
//! operator's grant (`[plugins.acme] grant_env = [...]` in codexcontinue.toml). So no plugin can
//! read another's settings, send its own key to another vendor's endpoint override, or widen its
//! allow-list with one, and first-party plugins need no configuration.

use std::collections::BTreeMap;

use serde::Serialize;

/// Variables owned by plugins, most specific first. A name ending in `_` is a prefix; `PG`
/// covers libpq's `PGHOST`, `PGPASSWORD`, ...
const OWNED: &[(&str, &[&str])] = &[
    // The Azure OpenAI SDKs read the OpenAI SDK's api-version variable.
    ("OPENAI_API_VERSION", &["openai", "azure-openai"]),
    ("AZURE_OPENAI_", &["azure-openai"]),
    ("OPENAI_", &["openai"]),
    ("ANTHROPIC_", &["anthropic"]),
    ("MISTRAL_", &["mistral"]),
    ("CO_", &["cohere"]),
    ("COHERE_", &["cohere"]),
    ("GITHUB_", &["github"]),
    ("OLLAMA_", &["ollama"]),
    ("DATABASE_URL", &["postgres-memory"]),
    ("PG", &["postgres-memory"]),
    ("CODEXCONTINUE_PG_", &["postgres-memory"]),
    ("REDIS_", &["redis-memory"]),
    ("CODEXCONTINUE_REDIS_", &["redis-memory"]),
];

const HOST_PREFIX: &str = "CODEXCONTINUE_";

/// Why a plugin may read a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantedBy {
    /// The variable is its vendor's, and this is that vendor's plugin.
    Vendor,
    /// The variable is in the plugin's own namespace.
    OwnNamespace,
    /// The operator granted it (`[plugins.<id>] grant_env`).
    Operator,
}

/// Why a plugin may not read a variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{variable} belongs to the {} plugin; no other plugin may read it", owners.join(" and "))]
    Vendor { variable: String, owners: Vec<&'static str> },
    #[error("{variable} is the host's own setting; no plugin may read it")]
    Host { variable: String },
    #[error("{variable} is outside the plugin's namespace ({namespace}*) and not granted to it")]
    NotGranted { variable: String, namespace: String },
}

/// A plugin's namespace: its id in upper snake case (`ACME_CORP_` for `acme-corp`).
pub fn namespace(id: &str) -> String {
    format!("{}_", id.to_ascii_uppercase().replace('-', "_"))
}

fn vendor_owners(variable: &str) -> Option<&'static [&'static str]> {
    let prefix = |name: &str| name.ends_with('_') || name == "PG";
    OWNED
        .iter()
        .find(|(name, _)| variable == *name || (prefix(name) && variable.starts_with(name)))
        .map(|(_, owners)| *owners)
}

/// Checks `variable` for plugin `id` with the operator's `granted` list: the first rule that
/// applies decides (vendor ownership, own namespace, host ownership, operator grant).
pub fn check(id: &str, variable: &str, granted: &[String]) -> Result<GrantedBy, Refusal> {
    if let Some(owners) = vendor_owners(variable) {
        return match owners.contains(&id) {
            true => Ok(GrantedBy::Vendor),
            false => Err(Refusal::Vendor { variable: variable.into(), owners: owners.to_vec() }),
        };
    }
    let own = namespace(id);
    if variable.starts_with(&own) || variable.strip_prefix(HOST_PREFIX).is_some_and(|v| v.starts_with(&own)) {
        return Ok(GrantedBy::OwnNamespace);
    }
    if variable.starts_with(HOST_PREFIX) {
        return Err(Refusal::Host { variable: variable.into() });
    }
    match granted.iter().any(|g| g == variable) {
        true => Ok(GrantedBy::Operator),
        false => Err(Refusal::NotGranted { variable: variable.into(), namespace: own }),
    }
}

/// Whether no grant could ever let plugin `id` read `variable` (it is another's): what a
/// manifest may be refused for on its own, before any operator configuration is known.
pub fn forbidden(id: &str, variable: &str) -> Option<Refusal> {
    match check(id, variable, &[variable.to_string()]) {
        Err(refusal @ (Refusal::Vendor { .. } | Refusal::Host { .. })) => Some(refusal),
        _ => None,
    }
}

/// One variable a plugin was granted, for `plugins inspect` and `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvGrant {
    pub variable: String,
    /// `config.<key>` or `secret`.
    pub read_as: String,
    pub granted_by: GrantedBy,
    /// Whether it has a value here (never the value).
    pub set: bool,
}

/// One origin a plugin may reach, and what put it on the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EgressGrant {
    pub origin: String,
    /// `manifest`, or the variable whose endpoint override added it.
    pub from: String,
}

/// One secret and the origins its value may be sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretGrant {
    pub name: String,
    pub origins: Vec<String>,
    pub set: bool,
}

/// Everything a plugin was granted, as an operator reviews it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantReport {
    pub env: Vec<EnvGrant>,
    pub egress: Vec<EgressGrant>,
    pub secrets: Vec<SecretGrant>,
}

/// The operator's grants by plugin id (`[plugins.<id>] grant_env`).
pub type OperatorGrants = BTreeMap<String, Vec<String>>;

#[cfg(test)]
mod tests {
    use super::*;

    /// First-party plugins read their own variables with no grant; nobody borrows them.
    #[test]
    fn vendors_own_their_variables() {
        assert_eq!(check("openai", "OPENAI_BASE_URL", &[]), Ok(GrantedBy::Vendor));
        assert_eq!(check("azure-openai", "OPENAI_API_VERSION", &[]), Ok(GrantedBy::Vendor));
        assert_eq!(check("postgres-memory", "DATABASE_URL", &[]), Ok(GrantedBy::Vendor));
        assert_eq!(check("redis-memory", "CODEXCONTINUE_REDIS_PREFIX", &[]), Ok(GrantedBy::Vendor));
        let granted = ["OPENAI_BASE_URL".to_string(), "PGPASSWORD".to_string()];
        for (id, var) in [
            ("acme", "OPENAI_BASE_URL"),
            ("azure-openai", "OPENAI_BASE_URL"),
            ("acme", "PGPASSWORD"),
            ("openai-evil", "OPENAI_EVIL_URL"),
            ("co", "CO_API_KEY"),
        ] {
            let refusal = check(id, var, &granted).unwrap_err();
            assert!(matches!(refusal, Refusal::Vendor { .. }), "{id} {var}: {refusal}");
            assert_eq!(forbidden(id, var), Some(refusal));
        }
    }

    /// A plugin's namespace is its own; the host's variables are nobody's; the rest needs a grant.
    #[test]
    fn namespaces_host_and_operator() {
        assert_eq!(check("acme-corp", "ACME_CORP_BASE_URL", &[]), Ok(GrantedBy::OwnNamespace));
        assert_eq!(check("dummy", "CODEXCONTINUE_DUMMY_GREETING", &[]), Ok(GrantedBy::OwnNamespace));
        assert!(matches!(check("acme", "CODEXCONTINUE_BIND", &[]), Err(Refusal::Host { .. })));
        assert!(forbidden("acme", "CODEXCONTINUE_BIND").is_some());
        let error = check("acme", "HTTPS_PROXY", &[]).unwrap_err();
        assert!(error.to_string().contains("ACME_*"), "{error}");
        assert_eq!(forbidden("acme", "HTTPS_PROXY"), None);
        assert_eq!(check("acme", "HTTPS_PROXY", &["HTTPS_PROXY".into()]), Ok(GrantedBy::Operator));
    }
}
