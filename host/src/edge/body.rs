//! A deadline on the whole request body. tower-http's `RequestBodyTimeoutLayer` restarts its
//! timer on every frame, so a body trickled one byte just inside the timeout is held for as
//! long as the client likes; this one counts from the request head, once.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::api::ApiError;

/// Why a body stopped: it did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body timeout")]
struct BodyTimeout;

/// The request body, failing once `sleep` fires before its end; `expired` tells the middleware.
struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Gives the body `limit` to arrive; a handler that saw it time out is answered 408 (whatever it
/// made of the broken body) and the connection is closed, since its rest is still unread.
pub async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let flag = expired.clone();
    let request = request
        .map(|inner| Body::new(DeadlineBody { inner, sleep: Box::pin(tokio::time::sleep(limit)), expired: flag }));
    let response = next.run(request).await;
    if !expired.load(Ordering::Relaxed) {
        return response;
    }
    tracing::info!("closed a connection whose request body took longer than {} ms", limit.as_millis());
    let mut response =
        ApiError::invalid(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request body did not arrive in time")
            .into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
