//! `GET /`: the web chat page. One self-contained HTML file compiled into the binary, so the
//! server needs no asset directory and the page always matches the API it talks to. Its
//! Content-Security-Policy allows exactly the page's one inline script (by hash) and requests to
//! this origin only, so injected markup could neither run nor send anything elsewhere.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use base64::prelude::{BASE64_STANDARD, Engine as _};
use sha2::{Digest, Sha256};

const INDEX: &str = include_str!("../../web/index.html");

/// The policy, computed once from the page's script (none runs if the page breaks the
/// one-script rule, which a test below forbids).
static CSP: LazyLock<String> = LazyLock::new(|| {
    let scripts = match script(INDEX) {
        Some(code) => format!("'sha256-{}'", BASE64_STANDARD.encode(Sha256::digest(code))),
        None => "'none'".into(),
    };
    format!(
        "default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; img-src data:; \
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

/// The text of the page's only `<script>` element: what a CSP hash covers. `None` when the page
/// mentions `<script` anywhere else (a second script would be blocked by the policy).
fn script(page: &str) -> Option<&str> {
    if page.matches("<script").count() != 1 {
        return None;
    }
    let (_, rest) = page.split_once("<script>")?;
    rest.split_once("</script>").map(|(body, _)| body)
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
        assert_eq!(script("<script>a</script>"), Some("a"));
        assert_eq!(script("<script>a</script><script>b</script>"), None);
        assert_eq!(script("<!-- <script> --><script>a</script>"), None);
    }
}
