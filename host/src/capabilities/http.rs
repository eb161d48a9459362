//! The `http-client` capability: outbound HTTP through one pooled client, only to the plugin's
//! allowed hosts, with secret placeholders substituted at egress. Denials are WIT error values
//! naming the plugin and the destination, not traps.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_http::HeaderInjector;
use reqwest::Url;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use wasmtime::component::Resource;

use super::PluginLabel;
use super::hosts::{AllowedHosts, origin};
use super::resolve::{GuardedResolver, PrivateAddress};
use super::secrets::{SecretError, Secrets};
use crate::runtime::HostState;
use crate::runtime::bindings::latest::provider::codexcontinue::plugin::http_client::{
    Headers, Host, HostResponse, HttpError, Method, Request,
};

/// Longest wait for a response head when the plugin names no timeout; the call's own wall-clock
/// limit still applies on top.
const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Biggest response body a plugin may read, so a broken upstream cannot fill the host's memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 << 20;

/// Longest wait for a TCP + TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one plugin may do over HTTP.
#[derive(Debug, Clone)]
pub struct HttpCapability {
    client: reqwest::Client,
    allowed: AllowedHosts,
    secrets: Secrets,
    max_response_bytes: u64,
}

impl HttpCapability {
    /// The capability of `plugin`, with its own pooled client whose resolver enforces the
    /// allow-list's rules on private addresses.
    pub fn new(plugin: &PluginLabel, allowed: AllowedHosts, secrets: Secrets) -> Result<Self, String> {
        let resolver =
            GuardedResolver { plugin: plugin.to_string(), private_names: Arc::new(allowed.private_names().clone()) };
        let client = reqwest::Client::builder()
            .user_agent(concat!("codexcontinue/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            // A redirect could lead a request (and its substituted secrets) off the allow-list.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self { client, allowed, secrets, max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES })
    }

    /// The secrets this plugin declares.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The destinations this plugin may reach.
    pub fn allowed(&self) -> &AllowedHosts {
        &self.allowed
    }

    /// Checks and sends one request, returning once the response head has arrived.
    pub async fn send(&self, plugin: &PluginLabel, request: Request) -> Result<Response, HttpError> {
        let url = Url::parse(&request.url).map_err(|e| HttpError::InvalidRequest(format!("bad url: {e}")))?;
        if !self.allowed.allows(&url) {
            let destination = origin(&url);
            tracing::warn!(plugin = %plugin, %destination, "denied outbound request");
            return Err(HttpError::Denied(format!(
                "plugin {plugin} may not connect to {destination}; add it to allowed_hosts in its manifest"
            )));
        }
        let denied = |e: SecretError| {
            tracing::warn!(plugin = %plugin, destination = %origin(&url), "denied secret: {e}");
            HttpError::Denied(format!("plugin {plugin}: {e}"))
        };
        let real_url = Url::parse(&self.secrets.substitute(&request.url, &url).map_err(denied)?)
            .map_err(|_| HttpError::InvalidRequest("the url is invalid once secrets are substituted".into()))?;
        if origin(&real_url) != origin(&url) {
            // A secret value must never be able to change where the request goes.
            return Err(HttpError::InvalidRequest("secret placeholders may not appear in the host".into()));
        }

        let method = method(request.method);
        let span = client_span(&method, &url);
        let mut builder = self.client.request(method, real_url);
        let mut traced = false;
        for (name, value) in &request.headers {
            let value = self.secrets.substitute(value, &url).map_err(denied)?;
            traced |= name.eq_ignore_ascii_case("traceparent");
            builder = builder.header(name.as_str(), value);
        }
        if !traced {
            // The vendor sees the trace this call belongs to (nothing is added when telemetry is off).
            let mut headers = reqwest::header::HeaderMap::new();
            let context = span.context();
            opentelemetry::global::get_text_map_propagator(|p| {
                p.inject_context(&context, &mut HeaderInjector(&mut headers))
            });
            builder = builder.headers(headers);
        }
        let head_timeout =
            request.timeout_ms.map(|ms| Duration::from_millis(ms.into())).unwrap_or(DEFAULT_HEAD_TIMEOUT);
        let sent = tokio::time::timeout(head_timeout, builder.body(request.body).send()).instrument(span.clone()).await;
        let response = match sent {
            Err(_) => return Err(failed(&span, HttpError::Timeout)),
            Ok(result) => result.map_err(|e| failed(&span, error(e)))?,
        };
        span.record("http.response.status_code", i64::from(response.status().as_u16()));
        if response.status().is_server_error() {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", response.status().as_str());
        }
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        Ok(Response {
            status: response.status().as_u16(),
            headers,
            body: response,
            received: 0,
            limit: self.max_response_bytes,
        })
    }
}

/// The client span of one upstream request (HTTP semantic conventions). The URL is recorded as
/// the plugin wrote it, before secrets are substituted, and without its query.
fn client_span(method: &reqwest::Method, url: &Url) -> tracing::Span {
    let mut shown = url.clone();
    shown.set_query(None);
    let _ = shown.set_password(None);
    tracing::info_span!(
        "upstream",
        otel.name = method.as_str(),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = method.as_str(),
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default().map(i64::from),
        url.full = shown.as_str(),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

fn failed(span: &tracing::Span, error: HttpError) -> HttpError {
    span.record("otel.status_code", "ERROR");
    span.record(
        "error.type",
        match &error {
            HttpError::Timeout => "timeout",
            _ => "connection",
        },
    );
    error
}

fn method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// Maps a transport error without its URL, which may carry a substituted secret.
fn error(e: reqwest::Error) -> HttpError {
    let e = e.without_url();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(denied) = s.downcast_ref::<PrivateAddress>() {
            tracing::warn!(plugin = %denied.plugin, host = %denied.host, "denied outbound request: private address");
            return HttpError::Denied(denied.to_string());
        }
        source = s.source();
    }
    if e.is_timeout() {
        HttpError::Timeout
    } else if e.is_connect() {
        HttpError::Connect(source_chain(&e))
    } else if e.is_builder() {
        HttpError::InvalidRequest(source_chain(&e))
    } else if e.is_body() || e.is_decode() || e.is_request() {
        HttpError::Protocol(source_chain(&e))
    } else {
        HttpError::Other(source_chain(&e))
    }
}

/// An error and its sources on one line.
pub(crate) fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Host side of the WIT `response` resource: the head, and the body still streaming in.
pub struct Response {
    status: u16,
    headers: Headers,
    body: reqwest::Response,
    received: u64,
    limit: u64,
}

impl Response {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        match self.body.chunk().await.map_err(error)? {
            None => Ok(None),
            Some(bytes) => {
                self.received += bytes.len() as u64;
                if self.received > self.limit {
                    return Err(HttpError::TooLarge(self.limit));
                }
                Ok(Some(bytes.to_vec()))
            }
        }
    }
}

impl Host for HostState {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Resource<Response>, HttpError>> {
        self.meter.host_call();
        let caps = self.caps.clone();
        match caps.http.send(&caps.plugin, request).await {
            Ok(response) => Ok(Ok(self.table.push(response)?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl HostResponse for HostState {
    async fn status(&mut self, r: Resource<Response>) -> wasmtime::Result<u16> {
        Ok(self.table.get(&r)?.status)
    }

    async fn headers(&mut self, r: Resource<Response>) -> wasmtime::Result<Headers> {
        Ok(self.table.get(&r)?.headers.clone())
    }

    async fn header(&mut self, r: Resource<Response>, name: String) -> wasmtime::Result<Option<String>> {
        let response = self.table.get(&r)?;
        Ok(response.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(&name)).map(|(_, v)| v.clone()))
    }

    async fn next_chunk(&mut self, r: Resource<Response>) -> wasmtime::Result<Result<Option<Vec<u8>>, HttpError>> {
        self.meter.host_call();
        Ok(self.table.get_mut(&r)?.next_chunk().await)
    }

    async fn body(&mut self, r: Resource<Response>) -> wasmtime::Result<Result<Vec<u8>, HttpError>> {
        self.meter.host_call();
        let response = self.table.get_mut(&r)?;
        let mut body = Vec::new();
        loop {
            match response.next_chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => return Ok(Ok(body)),
                Err(e) => return Ok(Err(e)),
            }
        }
    }

    async fn drop(&mut self, r: Resource<Response>) -> wasmtime::Result<()> {
        // Dropping the body closes the connection if it was not read to the end.
        self.table.delete(r)?;
        Ok(())
    }
}
