//! Where a database capability may connect: an address is checked against the plugin's
//! allow-list and its name resolved under the private-address rule (see `resolve.rs`) before
//! anything connects, and the connection goes to the address that passed the check.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;

use super::PluginLabel;
use super::hosts::{AllowedHosts, default_port, origin};
use super::resolve::{GuardedResolver, PrivateAddress};

/// Why an address may not be opened. Messages name the plugin and the origin, never the
/// credentials an address may carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// Not in the allow-list, or it resolves only to addresses the plugin may not reach.
    #[error("{0}")]
    Denied(String),
    /// Not an address of the expected kind.
    #[error("{0}")]
    Invalid(String),
    /// The name did not resolve.
    #[error("{0}")]
    Unresolved(String),
}

/// An address that passed the checks.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The address as given (it may hold credentials: never show it).
    pub url: Url,
    /// `scheme://host:port`, safe for messages.
    pub origin: String,
    /// Where to connect: the IP literal, or the first permitted address the name resolved to.
    pub addr: SocketAddr,
}

/// The destinations one plugin's database connections may reach.
#[derive(Debug, Clone)]
pub struct Dialer {
    plugin: PluginLabel,
    allowed: AllowedHosts,
    resolver: GuardedResolver,
}

impl Dialer {
    /// Checks against `allowed`; names resolve to private addresses only if `allowed` grants it.
    pub fn new(plugin: PluginLabel, allowed: AllowedHosts) -> Self {
        let resolver =
            GuardedResolver { plugin: plugin.to_string(), private_names: Arc::new(allowed.private_names().clone()) };
        Self { plugin, allowed, resolver }
    }

    /// The plugin these checks are for.
    pub fn plugin(&self) -> &PluginLabel {
        &self.plugin
    }

    /// Checks `address` (one of `schemes`) and resolves it. Nothing connects here.
    pub async fn check(&self, address: &str, schemes: &[&str]) -> Result<Destination, DialError> {
        let plugin = &self.plugin;
        let url = Url::parse(address).map_err(|e| {
            DialError::Invalid(format!("plugin {plugin}: not an address ({e}); write {}://host:port/...", schemes[0]))
        })?;
        if !schemes.contains(&url.scheme()) {
            return Err(DialError::Invalid(format!(
                "plugin {plugin}: the scheme {:?} is not one of {}",
                url.scheme(),
                schemes.join(", ")
            )));
        }
        let origin = origin(&url);
        if !self.allowed.allows(&url) {
            tracing::warn!(plugin = %plugin, destination = %origin, "denied database connection");
            return Err(DialError::Denied(format!(
                "plugin {plugin} may not connect to {origin}; add it to allowed_hosts in its manifest"
            )));
        }
        let port = url.port().or_else(|| default_port(url.scheme())).unwrap_or_default();
        let host = url.host_str().unwrap_or_default();
        if host.is_empty() {
            return Err(DialError::Invalid(format!("plugin {plugin}: the address names no host")));
        }
        // Hosts of non-web schemes are opaque to the URL parser, so IP literals are read here.
        let addr = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => match self.resolver.lookup(host, port).await {
                Ok(addrs) => *addrs.first().ok_or_else(|| DialError::Unresolved(format!("{origin} has no address")))?,
                Err(e) if e.is::<PrivateAddress>() => {
                    tracing::warn!(plugin = %plugin, destination = %origin, "denied database connection: private address");
                    return Err(DialError::Denied(e.to_string()));
                }
                Err(e) => return Err(DialError::Unresolved(format!("{origin}: {e}"))),
            },
        };
        Ok(Destination { url, origin, addr })
    }
}
