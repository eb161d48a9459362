//! The per-key limits at the HTTP edge: which key a turn counts against, the 429 in the
//! dialect's error shape with `Retry-After`, and the rate-limit headers in the dialect's style
//! on every turn (OpenAI's `x-ratelimit-*`, Anthropic's `anthropic-ratelimit-*`). Counting is
//! `crate::limits`; the real token usage is settled by the conversation through the ticket.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::anthropic::AnthropicError;
use super::error::ApiError;
use super::extract::{DEFAULT_USER, USER_HEADER};
use super::{AppState, auth};
use crate::limits::{self, Admission, Quota, Refusal};

/// How a dialect spells its rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    OpenAi,
    Anthropic,
}

/// The routes that run a turn; everything else passes untouched.
fn style(method: &Method, path: &str) -> Option<Style> {
    if method != Method::POST {
        return None;
    }
    match path {
        "/v1/messages" => Some(Style::Anthropic),
        "/chat" | "/v1/chat/completions" | "/v1/responses" => Some(Style::OpenAi),
        _ => None,
    }
}

/// Admits or refuses a turn before its handler runs, and labels the reply with what is left.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (Some(limiter), Some(style)) = (state.limiter.clone(), style(request.method(), request.uri().path())) else {
        return next.run(request).await;
    };
    let key = key(&state, request.headers());
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, state.config.limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let e = ApiError::invalid(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than the server accepts",
            );
            return shaped(style, e);
        }
    };
    // Every dialect says `"stream": true` at the top of its body; a body that does not parse
    // is refused by its handler, and counts as not streamed here.
    let stream = serde_json::from_slice::<StreamFlag>(&bytes).is_ok_and(|f| f.stream);
    // About four bytes of JSON per token: the estimate up front, settled with the real usage.
    let estimate = (bytes.len() as u64).div_ceil(4);
    let request = Request::from_parts(parts, Body::from(bytes));
    let admission = match limiter.admit(&key, estimate, stream).await {
        Ok(Ok(admission)) => admission,
        Ok(Err(refusal)) => return refuse(style, &refusal),
        Err(e) => {
            let error = ApiError {
                detail: Some(e.to_string()),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "limits_unavailable",
                    "the rate-limit store is unavailable",
                )
            };
            return shaped(style, error);
        }
    };
    let Admission { requests, tokens, ticket, stream } = admission;
    let mut response = limits::with_ticket(ticket, next.run(request)).await;
    headers(style, requests, tokens, response.headers_mut());
    if let Some(slot) = stream {
        // The slot is held for as long as the reply's body is being sent.
        let (parts, body) = response.into_parts();
        let body = body.into_data_stream().map(move |chunk| {
            let _held = &slot;
            chunk
        });
        response = Response::from_parts(parts, Body::from_stream(body));
    }
    response
}

#[derive(serde::Deserialize)]
struct StreamFlag {
    #[serde(default)]
    stream: bool,
}

/// What a turn counts against: a digest of its API key when keys are on (never the key
/// itself, which could end up in a shared store), else the user the `X-User-Id` header names.
fn key(state: &AppState, headers: &HeaderMap) -> String {
    if !state.config.api_keys.is_empty()
        && let Some(key) = auth::presented(headers)
    {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        return format!("key:{hex}");
    }
    let user = super::headers::header(headers, USER_HEADER).unwrap_or(DEFAULT_USER);
    format!("user:{user}")
}

/// The 429, in the dialect's error shape, with `Retry-After` and the rate-limit headers.
fn refuse(style: Style, refusal: &Refusal) -> Response {
    let error = ApiError {
        retry_after: Some(refusal.retry_after_secs()),
        ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "rate_limit_exceeded", refusal.message())
    };
    let mut response = shaped(style, error);
    headers(style, refusal.requests, refusal.tokens, response.headers_mut());
    response
}

fn shaped(style: Style, error: ApiError) -> Response {
    match style {
        Style::OpenAi => error.into_response(),
        Style::Anthropic => AnthropicError::from(error).into_response(),
    }
}

/// Writes each configured limit's headers in `style`.
fn headers(style: Style, requests: Option<Quota>, tokens: Option<Quota>, out: &mut HeaderMap) {
    for (what, quota) in [("requests", requests), ("tokens", tokens)] {
        let Some(q) = quota else { continue };
        let names = match style {
            Style::OpenAi => [
                format!("x-ratelimit-limit-{what}"),
                format!("x-ratelimit-remaining-{what}"),
                format!("x-ratelimit-reset-{what}"),
            ],
            Style::Anthropic => [
                format!("anthropic-ratelimit-{what}-limit"),
                format!("anthropic-ratelimit-{what}-remaining"),
                format!("anthropic-ratelimit-{what}-reset"),
            ],
        };
        let reset = match style {
            Style::OpenAi => openai_duration(q.reset),
            Style::Anthropic => super::rfc3339(OffsetDateTime::now_utc() + q.reset),
        };
        for (name, value) in names.into_iter().zip([q.limit.to_string(), q.remaining.to_string(), reset]) {
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                out.insert(name, value);
            }
        }
    }
}

/// OpenAI's spelling of a wait: `250ms`, `1.5s`, `6m0s`.
fn openai_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        let secs = format!("{:.3}", ms as f64 / 1000.0);
        return format!("{}s", secs.trim_end_matches('0').trim_end_matches('.'));
    }
    format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_openai_style() {
        assert_eq!(openai_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(openai_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(openai_duration(Duration::from_secs(59)), "59s");
        assert_eq!(openai_duration(Duration::from_secs(360)), "6m0s");
    }

    /// Each dialect's headers, only for the limits that are on.
    #[test]
    fn headers_in_each_style() {
        let q = Quota { limit: 10, remaining: 7, reset: Duration::from_secs(60) };
        let mut openai = HeaderMap::new();
        headers(Style::OpenAi, Some(q), None, &mut openai);
        assert_eq!(openai["x-ratelimit-limit-requests"], "10");
        assert_eq!(openai["x-ratelimit-remaining-requests"], "7");
        assert_eq!(openai["x-ratelimit-reset-requests"], "1m0s");
        assert!(openai.get("x-ratelimit-limit-tokens").is_none());
        let mut anthropic = HeaderMap::new();
        headers(Style::Anthropic, None, Some(q), &mut anthropic);
        assert_eq!(anthropic["anthropic-ratelimit-tokens-limit"], "10");
        assert_eq!(anthropic["anthropic-ratelimit-tokens-remaining"], "7");
        assert!(anthropic["anthropic-ratelimit-tokens-reset"].to_str().unwrap().ends_with('Z'));
    }
}
