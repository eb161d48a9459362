//! `GET /`: the web chat page. One self-contained HTML file compiled into the binary, so the
//! server needs no asset directory and the page always matches the API it talks to. Its
//! Content-Security-Policy allows exactly the page's one inline script (by hash) and requests to
//! this origin only, so injected markup could neither run nor send anything elsewhere.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use sha2::{Digest, Sha256};

const INDEX: &str = include_str!("../../web/index.html");

/// The policy, computed once from the page's script.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64(&Sha256::digest(script(INDEX).expect("index.html has one inline <script>")));
    format!(
        "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; img-src data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});

pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP.as_str()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        INDEX,
    )
}

/// The text of the page's only `<script>` element: what a CSP hash covers. `None` when there
/// is no script or more than one (a second one would be blocked by the policy).
fn script(page: &str) -> Option<&str> {
    let (_, rest) = page.split_once("<script>")?;
    let (body, after) = rest.split_once("</script>")?;
    (!after.contains("<script")).then_some(body)
}

/// Standard base64 with padding, as CSP hash sources are written.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page has exactly one inline script, so the policy's hash covers all of its code.
    #[test]
    fn page_has_one_script_and_the_policy_pins_it() {
        let body = script(INDEX).expect("one <script> in index.html");
        assert!(body.contains("fetch("));
        assert!(!INDEX.contains("<script src"), "the page must stay self-contained");
        assert!(CSP.contains("script-src 'sha256-"));
        assert_eq!(script("<script>a</script><script>b</script>"), None);
    }

    /// The encoder matches RFC 4648's test vectors.
    #[test]
    fn base64_matches_rfc_4648() {
        let cases = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }
}
