//! DNS for plugins: a name resolves only to public addresses unless it is `localhost` or an
//! operator granted it, so a hostname in an allow-list cannot be pointed (by DNS rebinding or a
//! poisoned record) at loopback, the host's private network or cloud metadata endpoints.
//! IP literals never reach this resolver; the allow-list matches them exactly. The HTTP client
//! uses it as its DNS resolver; the redis and postgres capabilities call [`GuardedResolver::lookup`].

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A resolution refused because the name leads only to non-public addresses.
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin} may not reach {host}: it resolves only to loopback or private addresses")]
pub struct PrivateAddress {
    pub plugin: String,
    pub host: String,
}

/// The resolver of one plugin's HTTP client.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub plugin: String,
    pub private_names: Arc<BTreeSet<String>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.lookup(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl GuardedResolver {
    /// Resolves `host` and keeps the addresses the plugin may reach (see [`Self::filter`]).
    /// Database capabilities connect to what this returns, so DNS cannot change the answer
    /// between the check and the connection.
    pub async fn lookup(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let host = host.to_ascii_lowercase();
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port)).await?.collect();
        Ok(self.filter(&host, found)?)
    }

    /// Keeps the public addresses of `host`, or all of them if it may be private.
    pub fn filter(&self, host: &str, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, PrivateAddress> {
        if self.private_names.contains(host) {
            return Ok(found);
        }
        let public: Vec<_> = found.into_iter().filter(|a| is_public(a.ip())).collect();
        if public.is_empty() {
            return Err(PrivateAddress { plugin: self.plugin.clone(), host: host.to_string() });
        }
        Ok(public)
    }
}

/// Whether `ip` is routable on the public internet (std's `is_global` is not stable yet).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (18..20).contains(&b)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0xdb8) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(private: &[&str]) -> GuardedResolver {
        GuardedResolver {
            plugin: "p@1".into(),
            private_names: Arc::new(private.iter().map(|s| s.to_string()).collect()),
        }
    }

    /// Loopback, private, link-local and metadata addresses are not public; the internet is.
    #[test]
    fn classifies_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "140.82.112.3", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    /// A real lookup of `localhost` is refused unless the name was granted.
    #[tokio::test]
    async fn refuses_names_that_resolve_to_loopback() {
        let name: Name = "localhost".parse().unwrap();
        let error = match resolver(&[]).resolve(name).await {
            Ok(_) => panic!("localhost resolved for a plugin that was not granted it"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains("p@1") && error.contains("localhost") && error.contains("loopback"), "{error}");
        let granted = resolver(&["localhost"]).resolve("localhost".parse().unwrap()).await.unwrap();
        assert!(granted.into_iter().all(|a| a.ip().is_loopback()));
    }

    /// Mixed answers keep only the public addresses.
    #[test]
    fn keeps_public_addresses() {
        let found = vec!["10.0.0.1:0".parse().unwrap(), "1.1.1.1:0".parse().unwrap()];
        assert_eq!(resolver(&[]).filter("a.example", found).unwrap(), vec!["1.1.1.1:0".parse::<SocketAddr>().unwrap()]);
    }
}
