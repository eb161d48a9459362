//! Turning vendor HTTP failures into [`ProviderError`]s: [`error_from_status`] maps a status,
//! `Retry-After` and body; `From<HttpError>` maps transport failures so `?` works on sends.
//! Messages quote the vendor's reply only, never the request (which may carry credentials).

use std::time::SystemTime;

use crate::{HttpError, ProviderError, RateLimit};

/// The longest piece of a vendor's error body quoted in a message, in bytes; enough for any
/// vendor's error sentence without copying a whole HTML error page into logs.
const MAX_DETAIL_BYTES: usize = 512;

/// Maps a non-success HTTP reply to a [`ProviderError`].
///
/// 401/403 → `unauthorized`, 404 → `not-found`, 400/422 → `bad-request`, 413 →
/// `request-too-large`, 429 → `rate-limited`, 408/504 → `timeout`, 529 → `overloaded`, other
/// 5xx → `unavailable`, anything else → `other`. The transient ones (429, 529, 5xx) carry
/// `retry_after`, the `Retry-After` header in seconds or as an HTTP date, in milliseconds. The
/// message is `HTTP <status>: <detail>`, where the detail is the vendor's error message when the
/// body is JSON in a common shape (`{"error": {"message": ..}}`, `{"error": ".."}`,
/// `{"message": ..}`, `{"detail": ..}`), else the start of the body.
pub fn error_from_status(status: u16, retry_after: Option<&str>, body: &str) -> ProviderError {
    error_from_status_at(status, retry_after, body, SystemTime::now())
}

/// [`error_from_status`] with the clock passed in, so HTTP-date handling is testable.
fn error_from_status_at(status: u16, retry_after: Option<&str>, body: &str, now: SystemTime) -> ProviderError {
    let detail = vendor_detail(body);
    let message = if detail.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {detail}") };
    match status {
        401 | 403 => ProviderError::Unauthorized(message),
        404 => ProviderError::NotFound(message),
        400 | 422 => ProviderError::BadRequest(message),
        429 => ProviderError::RateLimited(RateLimit {
            retry_after_ms: retry_after.and_then(|value| retry_after_ms(value, now)),
            message,
        }),
        408 | 504 => ProviderError::Timeout(message),
        413 => ProviderError::RequestTooLarge(message),
        // Anthropic's `overloaded_error`: up, but without capacity right now.
        529 => ProviderError::Overloaded(RateLimit {
            retry_after_ms: retry_after.and_then(|value| retry_after_ms(value, now)),
            message,
        }),
        500..=599 => ProviderError::Unavailable(RateLimit {
            retry_after_ms: retry_after.and_then(|value| retry_after_ms(value, now)),
            message,
        }),
        _ => ProviderError::Other(message),
    }
}

/// Milliseconds to wait from a `Retry-After` value: delay seconds (fractions allowed, as some
/// vendors send them) or an HTTP date; a date in the past means no wait.
fn retry_after_ms(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        // `as` saturates, so absurdly large values become u64::MAX rather than wrapping.
        return (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).map_or(0, |wait| wait.as_millis() as u64))
}

/// The vendor's own error sentence from a JSON body, else the trimmed body, cut to
/// [`MAX_DETAIL_BYTES`].
fn vendor_detail(body: &str) -> String {
    let body = body.trim();
    let from_json = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|json| {
        [json.pointer("/error/message"), json.get("error"), json.get("message"), json.get("detail")]
            .into_iter()
            .flatten()
            .find_map(|v| v.as_str().map(str::to_owned))
    });
    let detail = from_json.unwrap_or_else(|| body.to_owned());
    truncate(detail, MAX_DETAIL_BYTES)
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut with `…`.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let cut = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}

impl From<HttpError> for ProviderError {
    /// Transport failures: timeouts stay timeouts, connection and framing failures mean the
    /// vendor is unavailable, and denials or malformed requests are the plugin's or operator's
    /// problem (`other`, with the host's message naming the destination).
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Timeout => ProviderError::Timeout("the vendor did not answer in time".into()),
            HttpError::Connect(m) => ProviderError::unavailable(format!("cannot connect: {m}")),
            HttpError::Protocol(m) => ProviderError::unavailable(format!("broken reply: {m}")),
            HttpError::Denied(m) => ProviderError::Other(format!("request denied by the host: {m}")),
            HttpError::InvalidRequest(m) => ProviderError::Other(format!("invalid request: {m}")),
            HttpError::TooLarge(cap) => {
                ProviderError::Other(format!("reply larger than the host's cap of {cap} bytes"))
            }
            HttpError::Other(m) => ProviderError::Other(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(status: u16, body: &str) -> ProviderError {
        error_from_status(status, None, body)
    }

    /// Each status class maps to its WIT case.
    #[test]
    fn status_classes() {
        assert!(matches!(at(401, ""), ProviderError::Unauthorized(_)));
        assert!(matches!(at(403, ""), ProviderError::Unauthorized(_)));
        assert!(matches!(at(404, ""), ProviderError::NotFound(_)));
        assert!(matches!(at(400, ""), ProviderError::BadRequest(_)));
        assert!(matches!(at(422, ""), ProviderError::BadRequest(_)));
        assert!(matches!(at(429, ""), ProviderError::RateLimited(_)));
        assert!(matches!(at(408, ""), ProviderError::Timeout(_)));
        assert!(matches!(at(504, ""), ProviderError::Timeout(_)));
        assert!(matches!(at(500, ""), ProviderError::Unavailable(_)));
        assert!(matches!(at(503, ""), ProviderError::Unavailable(_)));
        assert!(matches!(at(418, ""), ProviderError::Other(_)));
        assert!(matches!(at(302, ""), ProviderError::Other(_)));
    }

    /// The vendor's own message is quoted from the usual JSON shapes, else the raw body.
    #[test]
    fn detail_from_body() {
        let openai = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
        assert_eq!(at(401, openai), ProviderError::Unauthorized("HTTP 401: Incorrect API key provided".into()));
        assert_eq!(
            at(404, r#"{"error":"model 'x' not found"}"#),
            ProviderError::NotFound("HTTP 404: model 'x' not found".into())
        );
        assert_eq!(at(400, r#"{"message":"bad"}"#), ProviderError::BadRequest("HTTP 400: bad".into()));
        assert_eq!(at(503, " upstream down \n"), ProviderError::unavailable("HTTP 503: upstream down"));
        assert_eq!(at(500, ""), ProviderError::unavailable("HTTP 500"));
    }

    /// Long bodies are cut on a character boundary.
    #[test]
    fn long_body_is_truncated() {
        let body = "é".repeat(1000);
        let ProviderError::Other(message) = at(418, &body) else { panic!() };
        assert!(message.len() <= MAX_DETAIL_BYTES + "HTTP 418: …".len());
        assert!(message.ends_with('…'));
    }

    /// Retry-After in seconds, fractional seconds and HTTP-date form all become milliseconds.
    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let ms = |value: &str| match error_from_status_at(429, Some(value), "", now) {
            ProviderError::RateLimited(limit) => limit.retry_after_ms,
            other => panic!("{other:?}"),
        };
        assert_eq!(ms("2"), Some(2000));
        assert_eq!(ms(" 1.5 "), Some(1500));
        assert_eq!(ms("Wed, 21 Oct 2015 07:28:30 GMT"), Some(30_000));
        assert_eq!(ms("Wed, 21 Oct 2015 07:27:00 GMT"), Some(0));
        assert_eq!(ms("-1"), None);
        assert_eq!(ms("soon"), None);
        assert_eq!(
            error_from_status_at(429, None, "", now + Duration::from_secs(1)),
            ProviderError::RateLimited(RateLimit { retry_after_ms: None, message: "HTTP 429".into() })
        );
    }

    /// Transport failures map to the case the host retries or reports appropriately.
    #[test]
    fn http_errors() {
        assert!(matches!(ProviderError::from(HttpError::Timeout), ProviderError::Timeout(_)));
        assert!(matches!(ProviderError::from(HttpError::Connect("refused".into())), ProviderError::Unavailable(_)));
        assert!(matches!(ProviderError::from(HttpError::Protocol("reset".into())), ProviderError::Unavailable(_)));
        assert_eq!(
            ProviderError::from(HttpError::Denied("https://evil.example is not allowed".into())),
            ProviderError::Other("request denied by the host: https://evil.example is not allowed".into())
        );
    }
}
