//! A small typed builder over the host's `http-client` import, and [`secret`] placeholders.
//!
//! The host sends every request with its pooled client, only to origins the manifest allows, and
//! substitutes `{{secret:NAME}}` placeholders at egress; denials come back as
//! [`HttpError::Denied`] naming the destination.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::provider::codexcontinue::plugin::http_client as host;
use crate::{HttpError, ProviderError, error_from_status};

pub use host::Method;

/// The placeholder for secret `name`, e.g. `{{secret:OPENAI_API_KEY}}`.
///
/// Put it in a header value or the URL; the host replaces it with the secret only when the
/// request goes to an origin the manifest binds that secret to, and denies the request otherwise.
pub fn secret(name: &str) -> String {
    format!("{{{{secret:{name}}}}}")
}

/// An outgoing request, built step by step and sent with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    inner: host::Request,
}

impl Request {
    /// A request with `method` to `url`, with no headers and an empty body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            inner: host::Request { method, url: url.into(), headers: Vec::new(), body: Vec::new(), timeout_ms: None },
        }
    }

    /// A `GET` request to `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request to `url`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// Adds a header; repeated names are sent in order.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.inner.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON, and `content-type: application/json` unless a
    /// content type was already set. Fails only if `value` cannot be serialised.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, ProviderError> {
        self.inner.body = serde_json::to_vec(value)
            .map_err(|e| ProviderError::Other(format!("cannot encode the request body: {e}")))?;
        if self.header_value("content-type").is_none() {
            self = self.header("content-type", "application/json");
        }
        Ok(self)
    }

    /// Sets the deadline for the response head; the host applies its own cap as well.
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.inner.timeout_ms = Some(timeout_ms);
        self
    }

    /// The first value of header `name` set so far (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.inner.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Sends the request and waits for the response head; the body is read from the
    /// [`Response`]. Any status is a successful send: see [`Response::error_for_status`].
    pub fn send(self) -> Result<Response, HttpError> {
        host::send(&self.inner).map(|inner| Response { inner })
    }
}

/// A response whose head has arrived; the body is pulled on demand.
#[derive(Debug)]
pub struct Response {
    inner: host::Response,
}

impl Response {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.inner.status()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.inner.header(name)
    }

    /// All headers, in order.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.inner.headers()
    }

    /// The body piece by piece as it arrives, for streamed replies (feed the pieces to
    /// [`sse::Parser`](crate::sse::Parser) or [`ndjson::Splitter`](crate::ndjson::Splitter)).
    /// The iterator ends after the last piece or the first error.
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks { response: self, done: false }
    }

    /// The rest of the body in one piece.
    pub fn bytes(&self) -> Result<Vec<u8>, HttpError> {
        self.inner.body()
    }

    /// The rest of the body as text; invalid UTF-8 is replaced, not refused.
    pub fn text(&self) -> Result<String, HttpError> {
        self.bytes().map(|body| String::from_utf8_lossy(&body).into_owned())
    }

    /// The rest of the body parsed as JSON; a body that does not parse is
    /// [`ProviderError::Other`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        let body = self.bytes()?;
        serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Other(format!("the vendor sent JSON we cannot read: {e}")))
    }

    /// Passes a 2xx response through; otherwise reads the body and maps the status with
    /// [`error_from_status`], honouring `Retry-After`.
    pub fn error_for_status(self) -> Result<Self, ProviderError> {
        let status = self.status();
        if (200..300).contains(&status) {
            return Ok(self);
        }
        let retry_after = self.header("retry-after");
        let body = self.text().unwrap_or_default();
        Err(error_from_status(status, retry_after.as_deref(), &body))
    }
}

/// Iterator over a response body's pieces, from [`Response::chunks`].
#[derive(Debug)]
pub struct Chunks<'a> {
    response: &'a Response,
    done: bool,
}

impl Iterator for Chunks<'_> {
    type Item = Result<Vec<u8>, HttpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.response.inner.next_chunk().transpose();
        // Stop after the end of the body or the first error: the host resource is spent.
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret placeholder has exactly the shape the host substitutes.
    #[test]
    fn secret_placeholder() {
        assert_eq!(secret("OPENAI_API_KEY"), "{{secret:OPENAI_API_KEY}}");
    }

    /// `json` encodes the body and adds a content type only when none was set.
    #[test]
    fn json_body_and_content_type() {
        let request = Request::post("https://api.example.com/v1/chat")
            .header("authorization", format!("Bearer {}", secret("KEY")))
            .json(&serde_json::json!({"model": "m"}))
            .unwrap();
        assert_eq!(request.inner.method, Method::Post);
        assert_eq!(request.inner.body, br#"{"model":"m"}"#);
        assert_eq!(request.header_value("Content-Type"), Some("application/json"));

        let custom = Request::post("https://x").header("Content-Type", "application/vnd.custom+json").json(&1).unwrap();
        assert_eq!(custom.inner.headers.len(), 1);
    }
}
