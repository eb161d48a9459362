//! Which names requests may be addressed to, and which browser origins may send them.
//!
//! A page on `evil.example` whose name an attacker re-points at 127.0.0.1 (DNS rebinding)
//! reaches a loopback server as a same-origin caller, but its requests still say
//! `Host: evil.example`: refusing names this server does not answer to stops it. Browsers also
//! say where a cross-site request comes from (`Origin`), which is checked against the same
//! names plus the configured CORS origins.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::config::EdgeConfig;

/// The names a loopback server answers to by default, on any port.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// One accepted host: a name (or IP literal, IPv6 in brackets), on one port or any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    name: String,
    port: Option<u16>,
}

impl FromStr for HostEntry {
    type Err = String;

    fn from_str(entry: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("allowed host {entry:?}: {why}");
        if entry.contains("://") || entry.contains(['/', '@', '*', '?', '#']) || entry.trim() != entry {
            return Err(bad("write a host name, optionally with :port (`chat.example.com`, `10.0.0.5:8080`)"));
        }
        let authority: Authority = entry.parse().map_err(|_| bad("not a host name"))?;
        let name = normalize(authority.host());
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        if !valid_port(&authority) {
            return Err(bad("the port must be a number"));
        }
        Ok(Self { name, port: authority.port_u16() })
    }
}

impl HostEntry {
    fn matches(&self, name: &str, port: Option<u16>) -> bool {
        self.name == name && (self.port.is_none() || self.port == port)
    }
}

/// No port, or a number (`Authority` accepts `host:x` and reports no port).
fn valid_port(authority: &Authority) -> bool {
    authority.as_str().len() == authority.host().len() || authority.port_u16().is_some()
}

/// Lowercase, without the trailing dot of a fully qualified name.
fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The edge's admission rules, built once at startup.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `None`: any host (bound beyond loopback and no list configured).
    hosts: Option<Vec<HostEntry>>,
    /// Exact origins (`https://app.example`) allowed cross-origin.
    cors_origins: Vec<HeaderValue>,
}

impl Policy {
    /// The rules for a server bound to `bound`. Refuses malformed entries; warns when a server
    /// reachable beyond this machine accepts any host name.
    pub fn new(config: &EdgeConfig, bound: SocketAddr) -> Result<Self, String> {
        let mut hosts = config.allowed_hosts.iter().map(|h| h.parse()).collect::<Result<Vec<HostEntry>, String>>()?;
        let cors_origins = config
            .cors_origins
            .iter()
            .map(|o| parse_origin(o).ok_or_else(|| format!("CORS origin {o:?}: write it as scheme://host[:port]")))
            .collect::<Result<_, String>>()?;
        let hosts = match (hosts.is_empty(), bound.ip().is_loopback()) {
            (false, _) => {
                if bound.ip().is_loopback() {
                    // The loopback names stay usable for local tools next to the configured ones.
                    hosts.extend(LOOPBACK_NAMES.iter().map(|n| n.parse().expect("a loopback name")));
                }
                Some(hosts)
            }
            (true, true) => Some(LOOPBACK_NAMES.iter().map(|n| n.parse().expect("a loopback name")).collect()),
            (true, false) => {
                tracing::warn!(
                    "listening on {bound} and accepting any Host name: set CODEXCONTINUE_ALLOWED_HOSTS to the names \
                     clients use, so web pages cannot reach this server by DNS rebinding"
                );
                None
            }
        };
        Ok(Self { hosts, cors_origins })
    }

    /// The configured CORS origins.
    pub fn cors_origins(&self) -> &[HeaderValue] {
        &self.cors_origins
    }

    /// Whether a request may be addressed to `authority` (a `Host` value or a URI's authority).
    pub fn host_allowed(&self, authority: &str) -> bool {
        let Some(hosts) = &self.hosts else { return true };
        // Credentials have no place in a Host header; `Authority` would accept them.
        if authority.contains('@') {
            return false;
        }
        let Ok(authority) = authority.parse::<Authority>() else { return false };
        if !valid_port(&authority) {
            return false;
        }
        let name = normalize(authority.host());
        hosts.iter().any(|h| h.matches(&name, authority.port_u16()))
    }

    /// Whether a browser request from `origin` may go on: a configured CORS origin, or one whose
    /// host is allowed. `null` (sandboxed frames, files) is allowed only when any host is.
    pub fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        if self.hosts.is_none() || self.cors_origins.contains(origin) {
            return true;
        }
        let Ok(uri) = origin.to_str().unwrap_or_default().parse::<Uri>() else { return false };
        match (uri.scheme_str(), uri.authority()) {
            (Some("http" | "https"), Some(authority)) => self.host_allowed(authority.as_str()),
            _ => false,
        }
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing else.
fn parse_origin(origin: &str) -> Option<HeaderValue> {
    let uri: Uri = origin.parse().ok()?;
    let plain = matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.authority().is_some_and(|a| !a.as_str().contains('@'))
        && uri.path_and_query().is_none_or(|p| p.as_str() == "/");
    plain.then(|| HeaderValue::from_str(origin.trim_end_matches('/')).ok()).flatten()
}

/// Refuses requests for hosts not allowed (421) and browser requests from origins not allowed
/// (403). The target's authority (absolute-form requests, HTTP/2) and the `Host` header are
/// both checked; a request with neither (HTTP/1.0) names no host a browser could have chosen.
pub async fn check(State(policy): State<Arc<Policy>>, request: Request, next: Next) -> Response {
    let authority = request.uri().authority().map(|a| a.as_str());
    let host = request.headers().get(header::HOST).map(|h| h.to_str().unwrap_or("\u{0}"));
    if authority.into_iter().chain(host).any(|a| !policy.host_allowed(a)) {
        return ApiError::invalid(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "this server does not answer to that host name; its operator lists the names it does in \
             CODEXCONTINUE_ALLOWED_HOSTS",
        )
        .into_response();
    }
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !policy.origin_allowed(origin)
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "origin_not_allowed",
            "requests from this web origin are not allowed; its operator lists allowed origins in \
             CODEXCONTINUE_CORS_ORIGINS",
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], cors: &[&str], bound: &str) -> Policy {
        let config = EdgeConfig {
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            cors_origins: cors.iter().map(|s| s.to_string()).collect(),
            ..EdgeConfig::default()
        };
        Policy::new(&config, bound.parse().unwrap()).unwrap()
    }

    /// A loopback server answers to the loopback names on any port, and to nothing else.
    #[test]
    fn loopback_defaults() {
        let p = policy(&[], &[], "127.0.0.1:8080");
        for ok in ["localhost", "localhost:8080", "127.0.0.1:9", "[::1]:8080", "LOCALHOST.", "127.0.0.1"] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in
            ["rebind.example:8080", "127.0.0.2", "localhost.evil.example", "user@localhost", "", "\u{0}", "localhost:x"]
        {
            assert!(!p.host_allowed(bad), "{bad}");
        }
    }

    /// Configured names (with or without a port) are added; beyond loopback, no list means any.
    #[test]
    fn configured_and_open() {
        let p = policy(&["chat.example.com", "10.0.0.5:8080"], &[], "0.0.0.0:8080");
        assert!(p.host_allowed("chat.example.com:443") && p.host_allowed("10.0.0.5:8080"));
        assert!(!p.host_allowed("10.0.0.5:8081") && !p.host_allowed("localhost"));
        let open = policy(&[], &[], "0.0.0.0:8080");
        assert!(open.host_allowed("anything.example"));
    }

    /// Origins pass when their host is allowed or they are listed for CORS; `null` does not.
    #[test]
    fn origins() {
        let p = policy(&[], &["https://app.example"], "127.0.0.1:8080");
        let allowed = |o: &str| p.origin_allowed(&HeaderValue::from_str(o).unwrap());
        assert!(allowed("http://127.0.0.1:8080") && allowed("http://localhost:3000") && allowed("https://app.example"));
        assert!(!allowed("https://evil.example") && !allowed("null") && !allowed("https://app.example:444"));
    }

    /// Malformed entries are refused with the entry named.
    #[test]
    fn bad_entries() {
        for bad in ["https://a.example", "a.example/x", "*.example.com", "a.example:port", " a"] {
            let error = bad.parse::<HostEntry>().unwrap_err();
            assert!(error.contains("allowed host"), "{error}");
        }
        let config = EdgeConfig { cors_origins: vec!["app.example".into()], ..EdgeConfig::default() };
        assert!(Policy::new(&config, "127.0.0.1:1".parse().unwrap()).unwrap_err().contains("CORS origin"));
    }
}
