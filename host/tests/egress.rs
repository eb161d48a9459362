//! What a plugin may reach over HTTP, and what happens to secrets on the way: the dummy plugin's
//! `http:<url>` model GETs `<url>` with `Authorization: Bearer {{secret:DUMMY_KEY}}`.

mod common;

use common::mock::{MockServer, Reply};
use common::{Setup, TestServer, plugin_with};
use serde_json::{Value, json};

const KEY: &str = "sk-dummy-0123456789";

/// The dummy with its `[secrets]`/`allowed_hosts` replaced by `grants` (TOML lines).
async fn server(grants: &str, env: Vec<(&'static str, String)>) -> TestServer {
    let grants = grants.to_string();
    let custom = vec![plugin_with("dummy", move |m| m.replace("allowed_hosts = []", &grants))];
    let mut env = env;
    env.push(("DUMMY_KEY", KEY.to_string()));
    TestServer::start(Setup {
        plugins: vec![],
        custom,
        env,
        configure: |c| c.providers.retries = 0,
        ..Setup::default()
    })
    .await
}

async fn fetch(server: &TestServer, url: &str) -> (u16, Value) {
    server.chat("hi", json!({ "provider": "dummy", "model": format!("http:{url}") })).await
}

async fn mock() -> MockServer {
    MockServer::start(|_| Reply::json(200, json!({ "ok": true }))).await
}

/// An allowed destination bound to the secret receives the real key; the client never sees it.
#[tokio::test]
async fn secrets_reach_bound_hosts_only() {
    let vendor = mock().await;
    let grants = format!("allowed_hosts = [\"{0}\"]\n[secrets]\nDUMMY_KEY = [\"{0}\"]", vendor.url);
    let server = server(&grants, vec![]).await;
    let (status, body) = fetch(&server, &format!("{}/v1/thing", vendor.url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply"], "200 {\"ok\":true}");
    let request = vendor.single_request();
    assert_eq!(request.uri, "/v1/thing");
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let (_, status) = server.get("/status").await;
    assert!(!status.to_string().contains(KEY) && !body.to_string().contains(KEY));
    server.stop().await;
}

/// A host outside the allow-list is refused before any connection, naming plugin and host.
#[tokio::test]
async fn unlisted_hosts_are_refused() {
    let vendor = mock().await;
    let server = server(
        "allowed_hosts = [\"https://api.example.com\"]\n[secrets]\nDUMMY_KEY = [\"https://api.example.com\"]",
        vec![],
    )
    .await;
    let (status, body) = fetch(&server, &format!("{}/steal", vendor.url)).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Denied")
            && message.contains("dummy@0.1.0")
            && message.contains(&vendor.url.replace("http://", "")),
        "{message}"
    );
    assert!(vendor.requests().is_empty());
    server.stop().await;
}

/// An allowed host that the secret is not bound to gets a denial, and no request at all: a
/// plugin cannot exfiltrate a key to a host of its choosing.
#[tokio::test]
async fn secrets_are_not_sent_to_unbound_hosts() {
    let vendor = mock().await;
    let grants = format!("allowed_hosts = [\"{}\"]\n[secrets]\nDUMMY_KEY = [\"https://api.example.com\"]", vendor.url);
    let server = server(&grants, vec![]).await;
    let (status, body) = fetch(&server, &format!("{}/steal", vendor.url)).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("secret DUMMY_KEY may not be sent to"), "{message}");
    assert!(!message.contains(KEY));
    assert!(vendor.requests().is_empty(), "the request must not leave at all");
    server.stop().await;
}

/// An operator's endpoint override (`base_url` in the manifest's `[env]`) allows exactly that
/// origin, for the plugin and its secrets, even written as a bare `host:port`.
#[tokio::test]
async fn operator_overrides_widen_the_allow_list() {
    let grants = "allowed_hosts = []\n[secrets]\nDUMMY_KEY = [\"https://api.example.com\"]\n";
    for base_url in [|url: &str| url.to_string(), |url: &str| url.trim_start_matches("http://").to_string()] {
        let vendor = mock().await;
        let server = server(grants, vec![("DUMMY_BASE_URL", base_url(&vendor.url))]).await;
        let (status, body) = fetch(&server, &format!("{}/v1", vendor.url)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(vendor.single_request().header("authorization"), Some(format!("Bearer {KEY}").as_str()));
        server.stop().await;
    }
}

/// Other overrides never widen, even when their value looks like a URL.
#[tokio::test]
async fn only_endpoint_overrides_widen() {
    let vendor = mock().await;
    let grants = "allowed_hosts = []\n[secrets]\nDUMMY_KEY = [\"https://api.example.com\"]\n";
    let server = server(grants, vec![("CODEXCONTINUE_DUMMY_GREETING", vendor.url.clone())]).await;
    let (status, _) = fetch(&server, &format!("{}/v1", vendor.url)).await;
    assert_eq!(status, 502);
    assert!(vendor.requests().is_empty());
    server.stop().await;
}

/// `localhost` may be granted by name; redirects are returned to the plugin, never followed.
#[tokio::test]
async fn localhost_by_name_and_no_redirects() {
    let vendor = MockServer::start(|_| Reply::json(302, json!({})).header("location", "https://evil.example/")).await;
    let local = vendor.url.replace("127.0.0.1", "localhost");
    let grants = format!("allowed_hosts = [\"{local}\"]\n[secrets]\nDUMMY_KEY = [\"{local}\"]");
    let server = server(&grants, vec![]).await;
    let (status, body) = fetch(&server, &format!("{local}/moved")).await;
    assert_eq!((status, &body["reply"]), (200, &json!("302 {}")), "{body}");
    assert_eq!(vendor.requests().len(), 1);
    server.stop().await;
}
