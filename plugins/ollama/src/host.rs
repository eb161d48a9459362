//! `OLLAMA_HOST` as Ollama's own client reads it: `host`, `host:port`, `:port` or a full URL,
//! turned into the base URL requests go to.

/// Ollama's address when `OLLAMA_HOST` is unset.
pub const DEFAULT: &str = "http://127.0.0.1:11434";

/// Ollama's port when `OLLAMA_HOST` names a host without one and without a scheme.
const PORT: &str = "11434";

/// The base URL for `value`, without a trailing slash.
///
/// A value with a scheme is used as written. Without one, as Ollama does, the scheme is
/// `http` and the port 11434 unless given; a missing host or the listen-on-everything
/// addresses `0.0.0.0` and `::` (what `ollama serve` is often told to bind) mean this machine,
/// `127.0.0.1` / `[::1]`. The host widens its allow-list from the raw value, so operators are
/// told (manifest, docs) to write `http://host:port`, the one form both read alike.
pub fn base_url(value: &str) -> String {
    let value = value.trim().trim_end_matches('/');
    if value.is_empty() {
        return DEFAULT.to_owned();
    }
    if value.contains("://") {
        return value.to_owned();
    }
    let (authority, path) = value.split_once('/').map_or((value, String::new()), |(a, p)| (a, format!("/{p}")));
    let (host, port) = match authority.rsplit_once(':') {
        // A colon inside an unbracketed host is IPv6, not a port.
        Some((host, port)) if !port.contains(']') && (host.starts_with('[') || !host.contains(':')) => (host, port),
        _ => (authority, PORT),
    };
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1".to_owned(),
        "::" | "[::]" => "[::1]".to_owned(),
        ipv6 if ipv6.contains(':') && !ipv6.starts_with('[') => format!("[{ipv6}]"),
        host => host.to_owned(),
    };
    format!("http://{host}:{port}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form Ollama's client accepts, as a URL.
    #[test]
    fn ollama_host_forms() {
        for (value, expected) in [
            ("", "http://127.0.0.1:11434"),
            ("127.0.0.1:11434", "http://127.0.0.1:11434"),
            ("0.0.0.0:11434", "http://127.0.0.1:11434"),
            ("0.0.0.0", "http://127.0.0.1:11434"),
            (":8080", "http://127.0.0.1:8080"),
            ("gpu-box", "http://gpu-box:11434"),
            ("gpu-box:9000/", "http://gpu-box:9000"),
            ("gpu-box:9000/ollama", "http://gpu-box:9000/ollama"),
            ("[::]:11434", "http://[::1]:11434"),
            ("[fd00::2]:11434", "http://[fd00::2]:11434"),
            ("fd00::2", "http://[fd00::2]:11434"),
            ("[::1]", "http://[::1]:11434"),
            (" http://10.0.0.5:11434/ ", "http://10.0.0.5:11434"),
            ("https://ollama.example.com", "https://ollama.example.com"),
        ] {
            assert_eq!(base_url(value), expected, "{value:?}");
        }
    }
}
