//! Typed allow-lists of network destinations, parsed from manifests at load and checked before
//! every connection. The default is empty: a plugin reaches nothing it did not ask for.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use reqwest::Url;

/// One allowed destination: `scheme://host[:port]`, where the host may start with `*.` to allow
/// every subdomain (`https://*.openai.azure.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: String,
    host: HostMatch,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Exact(String),
    /// `*.example.com` is stored as `.example.com`.
    Subdomains(String),
}

/// Why an allow-list entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not a valid destination: {reason}")]
pub struct PatternError {
    entry: String,
    reason: &'static str,
}

/// The default port of the schemes plugins use.
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" => Some(6379),
        "rediss" => Some(6380),
        "postgres" | "postgresql" => Some(5432),
        _ => None,
    }
}

/// `postgresql://` is another spelling of `postgres://`; patterns and addresses compare by this.
fn canonical_scheme(scheme: &str) -> &str {
    match scheme {
        "postgresql" => "postgres",
        other => other,
    }
}

impl FromStr for HostPattern {
    type Err = PatternError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let err = |reason| PatternError { entry: entry.to_string(), reason };
        let Some((scheme, rest)) = entry.split_once("://") else {
            return Err(err("write it as scheme://host[:port], e.g. https://api.openai.com"));
        };
        let scheme = canonical_scheme(&scheme.to_ascii_lowercase()).to_string();
        let port_default =
            default_port(&scheme).ok_or_else(|| err("the scheme must be http, https, redis, rediss or postgres"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(err("only an origin is allowed: no path, query or credentials"));
        }
        let (host, port) = split_port(authority).map_err(err)?;
        let host = host.to_ascii_lowercase();
        if host.is_empty() || host == "*" || host.contains("**") {
            return Err(err(
                "a catch-all host is not allowed; name the hosts, or a subdomain pattern like https://*.example.com",
            ));
        }
        let host = match host.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') && suffix[1..].contains('.') && !suffix.contains('*') => {
                HostMatch::Subdomains(suffix.to_string())
            }
            Some(_) => return Err(err("a wildcard must be a whole leading label under a domain, like *.example.com")),
            None if host.contains('*') => {
                return Err(err("a wildcard must be a whole leading label, like *.example.com"));
            }
            None => HostMatch::Exact(host),
        };
        Ok(Self { scheme, host, port: port.unwrap_or(port_default) })
    }
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    // IPv6 literals keep their brackets: [::1]:8080
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    match port {
        None => Ok((host, None)),
        Some(p) => p.parse::<u16>().map(|p| (host, Some(p))).map_err(|_| "the port must be a number"),
    }
}

impl HostPattern {
    /// Whether `url` points at this destination.
    pub fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else { return false };
        let host = host.to_ascii_lowercase();
        let port = url.port().or_else(|| default_port(url.scheme()));
        canonical_scheme(url.scheme()) == self.scheme
            && port == Some(self.port)
            && match &self.host {
                HostMatch::Exact(h) => *h == host,
                HostMatch::Subdomains(suffix) => host.ends_with(suffix.as_str()) && host.len() > suffix.len(),
            }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostMatch::Exact(h) => h.clone(),
            HostMatch::Subdomains(s) => format!("*{s}"),
        };
        write!(f, "{}://{host}:{}", self.scheme, self.port)
    }
}

/// The destinations a plugin may reach; empty unless its manifest says otherwise.
///
/// Names resolve only to public addresses, except `localhost` and names an operator granted
/// explicitly (a `*_BASE_URL` override), so DNS cannot point a plugin at the host's own network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<HostPattern>, BTreeSet<String>);

impl AllowedHosts {
    /// Parses every entry, failing on the first bad one.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, PatternError> {
        let patterns = entries.iter().map(|e| e.as_ref().parse()).collect::<Result<_, _>>()?;
        Ok(Self(patterns, BTreeSet::from(["localhost".to_string()])))
    }

    /// Adds a destination an operator chose (e.g. a `*_BASE_URL` override), which may also
    /// resolve to private addresses.
    pub fn push_operator(&mut self, pattern: HostPattern) {
        if let HostMatch::Exact(host) = &pattern.host {
            self.1.insert(host.clone());
        }
        if !self.0.contains(&pattern) {
            self.0.push(pattern);
        }
    }

    /// Host names that may resolve to loopback or private addresses.
    pub fn private_names(&self) -> &BTreeSet<String> {
        &self.1
    }

    /// Whether any entry matches `url`.
    pub fn allows(&self, url: &Url) -> bool {
        self.0.iter().any(|p| p.matches(url))
    }

    /// The entries, for `/status` and error messages.
    pub fn iter(&self) -> impl Iterator<Item = &HostPattern> {
        self.0.iter()
    }
}

/// The origin of `url` as `scheme://host:port`, for messages.
pub fn origin(url: &Url) -> String {
    let port = url.port().or_else(|| default_port(url.scheme())).map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{}{port}", url.scheme(), url.host_str().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        s.parse().unwrap()
    }

    /// Exact origins match only their own scheme, host and port.
    #[test]
    fn exact_origin() {
        let p: HostPattern = "https://api.openai.com".parse().unwrap();
        assert!(p.matches(&url("https://api.openai.com/v1/chat/completions")));
        assert!(p.matches(&url("https://API.openai.com:443/")));
        assert!(!p.matches(&url("http://api.openai.com/")));
        assert!(!p.matches(&url("https://api.openai.com:8443/")));
        assert!(!p.matches(&url("https://api.openai.com.evil.net/")));
        assert!(!p.matches(&url("https://evil.net/?https://api.openai.com")));
    }

    /// `*.domain` matches subdomains, never the bare domain or look-alikes.
    #[test]
    fn subdomain_pattern() {
        let p: HostPattern = "https://*.openai.azure.com".parse().unwrap();
        assert!(p.matches(&url("https://mine.openai.azure.com/openai")));
        assert!(!p.matches(&url("https://openai.azure.com/")));
        assert!(!p.matches(&url("https://mine.evilopenai.azure.com.net/")));
    }

    /// Ports, IPv6 literals and database schemes parse.
    #[test]
    fn ports_and_schemes() {
        let p: HostPattern = "http://127.0.0.1:11434".parse().unwrap();
        assert!(p.matches(&url("http://127.0.0.1:11434/api/chat")));
        assert!(!p.matches(&url("http://127.0.0.1:11435/api/chat")));
        let p: HostPattern = "http://[::1]:8080".parse().unwrap();
        assert!(p.matches(&url("http://[::1]:8080/")));
        let p: HostPattern = "redis://127.0.0.1".parse().unwrap();
        assert!(p.matches(&url("redis://127.0.0.1:6379/0")));
        assert!(!p.matches(&url("rediss://127.0.0.1:6379/0")));
        let p: HostPattern = "postgresql://db.example:5432".parse().unwrap();
        assert!(p.matches(&url("postgres://app:pw@db.example/app")));
        assert!(p.matches(&url("postgresql://db.example:5432/app")));
        assert!(!p.matches(&url("postgres://db.example:5433/app")));
    }

    /// Catch-alls and malformed entries are refused with a reason.
    #[test]
    fn refuses_catch_alls() {
        for bad in [
            "*",
            "https://*",
            "*://api.openai.com",
            "https://*.com",
            "api.openai.com",
            "https://a.com/v1",
            "ftp://a.com",
            "https://u:p@a.com",
            "https://a*.com",
            "https://a.com:http",
        ] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad} should be refused");
        }
        let e = "https://*".parse::<HostPattern>().unwrap_err().to_string();
        assert!(e.contains("catch-all"), "{e}");
    }
}
