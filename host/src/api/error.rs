//! The one mapping from errors to HTTP: `{"error": {"message", "type", "code"}}` with the right
//! status. Client errors carry their message; server errors carry a safe summary, and their
//! detail rides in a response extension to the logging middleware, so this file has no side
//! effects.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ids::InvalidId;
use crate::providers::{self, describe};
use crate::runtime::types::ProviderError;
use crate::{conversation, memory, runtime, store};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// OpenAI-style error type, e.g. `invalid_request_error`.
    pub kind: &'static str,
    /// Stable machine-readable code, e.g. `session_not_found`.
    pub code: &'static str,
    pub message: String,
    /// Seconds the client should wait (429).
    pub retry_after: Option<u64>,
    /// What the log gets for 5xx errors; never sent to the client.
    pub detail: Option<String>,
}

/// The detail of a 5xx error, for the logging middleware.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, code, message: message.into(), retry_after: None, detail: None }
    }

    /// 400/413/422-style problems with the request itself.
    pub fn invalid(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(status, "invalid_request_error", code, message)
    }

    /// 422 `invalid_parameter`: a field is well-formed JSON but its value is out of bounds.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::invalid(StatusCode::UNPROCESSABLE_ENTITY, "invalid_parameter", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found_error", code, message)
    }

    /// A 500 whose `detail` is logged, never shown.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal_error", "internal server error")
        }
    }

    fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The JSON body, `{"error": {"message", "type", "code"}}`.
    pub fn body(&self) -> serde_json::Value {
        json!({ "error": { "message": self.message, "type": self.kind, "code": self.code } })
    }

    /// For an error that ends a stream already under way (its status line has gone out): logs a
    /// server error's detail, as the middleware does for the others, and returns the body.
    pub fn streamed(&self) -> serde_json::Value {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, "stream failed: {}", self.detail.as_deref().unwrap_or(&self.message));
        }
        self.body()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status.is_server_error() {
            let detail = self.detail.unwrap_or(self.message);
            response.extensions_mut().insert(ErrorDetail(detail));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        use StatusCode as S;
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::invalid(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a request with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(e) => {
                Self::invalid(S::BAD_REQUEST, "invalid_json", format!("malformed JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => Self::invalid(S::UNPROCESSABLE_ENTITY, "invalid_body", e.body_text()),
            JsonRejection::BytesRejection(e) if e.status() == S::PAYLOAD_TOO_LARGE => Self::invalid(
                S::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than the server accepts",
            ),
            other => Self::invalid(other.status(), "invalid_body", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::invalid(StatusCode::BAD_REQUEST, "invalid_query", rejection.body_text())
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        match e.session {
            true => Self::invalid(StatusCode::BAD_REQUEST, "invalid_session_id", e.to_string()),
            false => Self::invalid_parameter(e.to_string()),
        }
    }
}

impl From<conversation::Error> for ApiError {
    fn from(e: conversation::Error) -> Self {
        use conversation::Error as E;
        match e {
            E::InvalidParameter(m) => Self::invalid_parameter(m),
            E::InvalidId(e) => e.into(),
            e @ E::MessageTooLong { .. } => {
                Self::invalid(StatusCode::PAYLOAD_TOO_LARGE, "message_too_long", e.to_string())
            }
            E::Memory(e) => e.into(),
            E::Providers(e) => e.into(),
            e @ E::NotRecorded => Self::internal(e.to_string()),
        }
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict_error", "conflict", m),
            // Deleted while this request ran: nothing of it was stored.
            store::Error::Gone(m) => Self::not_found("session_not_found", format!("{m}; nothing was stored")),
            store::Error::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "store_unavailable",
                "the conversation store is unavailable",
            )
            .with_detail(e.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<memory::Error> for ApiError {
    fn from(e: memory::Error) -> Self {
        match e {
            memory::Error::SessionNotFound(id) => {
                Self::not_found("session_not_found", format!("session {id:?} not found"))
            }
            memory::Error::QuotaExceeded { used, adding, limit } => Self::invalid(
                StatusCode::PAYLOAD_TOO_LARGE,
                "workspace_quota_exceeded",
                format!(
                    "your workspaces hold {} and this file adds {}, over the quota of {}; remove files or workspaces first",
                    mib(used),
                    mib(adding),
                    mib(limit)
                ),
            ),
            memory::Error::Store(e) => e.into(),
        }
    }
}

/// Bytes as MiB with one decimal, for messages.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

impl From<runtime::Error> for ApiError {
    fn from(e: runtime::Error) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            runtime::Error::Trap { .. } => (S::BAD_GATEWAY, "plugin_crashed"),
            runtime::Error::OutOfMemory { .. } => (S::BAD_GATEWAY, "plugin_out_of_memory"),
            runtime::Error::InvalidOutput { .. } => (S::BAD_GATEWAY, "plugin_invalid_output"),
            runtime::Error::Instantiate { .. } => (S::SERVICE_UNAVAILABLE, "plugin_unavailable"),
            runtime::Error::CpuExhausted { .. } => (S::GATEWAY_TIMEOUT, "plugin_cpu_exhausted"),
            runtime::Error::Timeout { .. } => (S::GATEWAY_TIMEOUT, "plugin_timeout"),
            runtime::Error::Busy { .. } => (S::SERVICE_UNAVAILABLE, "plugin_busy"),
        };
        // Runtime messages name the plugin and the failure, never guest data or secrets.
        Self::new(status, "plugin_error", code, e.to_string())
    }
}

impl From<providers::Error> for ApiError {
    fn from(e: providers::Error) -> Self {
        use StatusCode as S;
        match e {
            providers::Error::Unknown(id) => {
                Self::not_found("provider_not_found", format!("no provider plugin named {id:?} is loaded"))
            }
            providers::Error::NoneLoaded => Self::new(
                S::SERVICE_UNAVAILABLE,
                "server_error",
                "no_provider",
                "no provider plugin is loaded; see /status",
            ),
            e @ providers::Error::NotConfigured { .. } => {
                Self::new(S::SERVICE_UNAVAILABLE, "server_error", "provider_not_configured", e.to_string())
            }
            providers::Error::Runtime(e) => e.into(),
            e @ providers::Error::Deadline { .. } => {
                Self::new(S::GATEWAY_TIMEOUT, "timeout_error", "deadline_exceeded", e.to_string())
            }
            providers::Error::Upstream { plugin, error } => {
                let message = format!("provider {plugin}: {}", describe(&error));
                let (status, kind, code) = match &error {
                    ProviderError::Unauthorized(_) => (S::BAD_GATEWAY, "provider_error", "upstream_unauthorized"),
                    ProviderError::RateLimited(_) => (S::TOO_MANY_REQUESTS, "rate_limit_error", "rate_limited"),
                    ProviderError::BadRequest(_) => (S::BAD_REQUEST, "invalid_request_error", "upstream_bad_request"),
                    ProviderError::RequestTooLarge(_) => {
                        (S::PAYLOAD_TOO_LARGE, "invalid_request_error", "request_too_large")
                    }
                    ProviderError::ContextLengthExceeded(_) => {
                        (S::BAD_REQUEST, "invalid_request_error", "context_length_exceeded")
                    }
                    ProviderError::NotFound(_) => (S::NOT_FOUND, "not_found_error", "model_not_found"),
                    ProviderError::Unavailable(_) => (S::BAD_GATEWAY, "provider_error", "upstream_unavailable"),
                    ProviderError::Overloaded(_) => (S::SERVICE_UNAVAILABLE, "provider_error", "upstream_overloaded"),
                    ProviderError::Timeout(_) => (S::GATEWAY_TIMEOUT, "provider_error", "upstream_timeout"),
                    ProviderError::Unsupported(_) => (S::BAD_REQUEST, "invalid_request_error", "unsupported"),
                    ProviderError::Other(_) => (S::BAD_GATEWAY, "provider_error", "upstream_error"),
                };
                let retry_after = error.retry_after_ms().map(|ms| ms.div_ceil(1000));
                Self { retry_after, ..Self::new(status, kind, code, message) }
            }
        }
    }
}
