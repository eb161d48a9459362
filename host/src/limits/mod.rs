//! Per-key limits: requests and tokens per minute and concurrent streams, per API key (per
//! user when keys are off). The [`Limiter`] admits or refuses a turn before it runs and hands
//! out a [`Ticket`] that settles the token estimate with the real usage afterwards. Counting is
//! a [`Counter`]: in-process, or in Redis when `[limits] shared` is set so hosts share a budget.
//! It knows nothing of HTTP: `api` turns admissions and refusals into headers and 429s.

mod counter;
mod redis;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

pub use counter::{Counter, LocalCounter, Taken};
pub use redis::RedisCounter;

use crate::config::RequestLimits;

/// The window of "per minute".
pub const MINUTE: Duration = Duration::from_secs(60);

/// Why limits could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared store (`[limits] shared`) did not answer; its message carries no credentials.
    #[error("the shared limit store is unavailable: {0}")]
    Shared(String),
}

/// Which limit refused a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Requests,
    Tokens,
    Streams,
}

/// Where one limit stands for a key, for the rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window is back to its full budget.
    pub reset: Duration,
}

impl Quota {
    fn of(limit: u64, taken: &Taken) -> Self {
        Self { limit, remaining: limit.saturating_sub(taken.used), reset: taken.reset }
    }
}

/// A turn let through: where its limits stand, the ticket that settles its tokens, and its
/// stream slot (held until the reply's body is dropped).
#[derive(Debug, Default)]
pub struct Admission {
    pub requests: Option<Quota>,
    pub tokens: Option<Quota>,
    pub ticket: Option<Ticket>,
    pub stream: Option<StreamSlot>,
}

/// A turn turned away.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub kind: Kind,
    pub limit: u64,
    /// How long until the turn would fit.
    pub retry_after: Duration,
    pub requests: Option<Quota>,
    pub tokens: Option<Quota>,
}

impl Refusal {
    /// A message for the client, naming the limit and the wait.
    pub fn message(&self) -> String {
        let what = match self.kind {
            Kind::Requests => format!("{} requests per minute", self.limit),
            Kind::Tokens => format!("{} tokens per minute", self.limit),
            Kind::Streams => format!("{} concurrent streams", self.limit),
        };
        match self.kind {
            Kind::Streams => format!("rate limit reached: {what} for this key; try again when a stream ends"),
            _ => format!("rate limit reached: {what} for this key; try again in {}s", self.retry_after_secs()),
        }
    }

    /// `Retry-After` in whole seconds, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_millis().div_ceil(1000).max(1) as u64
    }
}

/// Counts turns against the configured limits.
pub struct Limiter {
    requests: u64,
    tokens: u64,
    streams: u64,
    /// How long a stream slot lives if its host dies without releasing it.
    stream_ttl: Duration,
    counter: Arc<dyn Counter>,
}

impl Limiter {
    /// The limiter for `limits`, or `None` when every limit is off (0). Connects to the shared
    /// store when one is configured. Streams that outlive `stream_ttl` stop counting.
    pub async fn new(limits: &RequestLimits, stream_ttl: Duration) -> Result<Option<Self>, Error> {
        let (requests, tokens, streams) =
            (limits.requests_per_minute as u64, limits.tokens_per_minute as u64, limits.concurrent_streams as u64);
        if requests == 0 && tokens == 0 && streams == 0 {
            return Ok(None);
        }
        let counter: Arc<dyn Counter> = match &limits.shared {
            Some(url) => Arc::new(RedisCounter::connect(url, &limits.shared_prefix).await?),
            None => Arc::new(LocalCounter::default()),
        };
        Ok(Some(Self::with_counter(limits, stream_ttl, counter)))
    }

    /// The same over any counter.
    pub fn with_counter(limits: &RequestLimits, stream_ttl: Duration, counter: Arc<dyn Counter>) -> Self {
        Self {
            requests: limits.requests_per_minute as u64,
            tokens: limits.tokens_per_minute as u64,
            streams: limits.concurrent_streams as u64,
            stream_ttl,
            counter,
        }
    }

    /// Admits a turn of about `tokens` prompt tokens for `key`, or says which limit refuses it.
    /// A refused turn takes nothing from any budget.
    pub async fn admit(&self, key: &str, tokens: u64, stream: bool) -> Result<Result<Admission, Refusal>, Error> {
        let mut admission = Admission::default();
        let mut taken: Vec<(String, String)> = Vec::new();
        let refusal = async {
            if self.requests > 0 {
                let k = format!("{key}:requests");
                let t = self.counter.take(&k, 1, self.requests, MINUTE).await?;
                admission.requests = Some(Quota::of(self.requests, &t));
                match t.entry {
                    Some(id) => taken.push((k, id)),
                    None => return Ok(Some((Kind::Requests, self.requests, t.retry_after))),
                }
            }
            if self.tokens > 0 {
                let k = format!("{key}:tokens");
                let t = self.counter.take(&k, tokens, self.tokens, MINUTE).await?;
                admission.tokens = Some(Quota::of(self.tokens, &t));
                match t.entry {
                    Some(id) => {
                        admission.ticket =
                            Some(Ticket { counter: self.counter.clone(), key: k.clone(), entry: id.clone() });
                        taken.push((k, id));
                    }
                    None => return Ok(Some((Kind::Tokens, self.tokens, t.retry_after))),
                }
            }
            if stream && self.streams > 0 {
                let k = format!("{key}:streams");
                let t = self.counter.take(&k, 1, self.streams, self.stream_ttl).await?;
                match t.entry {
                    Some(id) => {
                        admission.stream = Some(StreamSlot { counter: self.counter.clone(), key: k, entry: id })
                    }
                    // When a stream ends is anyone's guess; a second is a polite interval to poll at.
                    None => return Ok(Some((Kind::Streams, self.streams, Duration::from_secs(1)))),
                }
            }
            Ok::<_, Error>(None)
        }
        .await;
        let refused = match refusal {
            Ok(None) => return Ok(Ok(admission)),
            Ok(Some(refused)) => Ok(refused),
            Err(e) => Err(e),
        };
        // Give back what the turn took before it was refused (or the store failed).
        if let Some(ticket) = admission.ticket.as_mut() {
            ticket.entry.clear();
        }
        for (k, id) in &taken {
            self.counter.set(k, id, 0).await?;
        }
        let (kind, limit, retry_after) = refused?;
        let back = |q: Option<Quota>| q.map(|q| Quota { remaining: (q.remaining + 1).min(q.limit), ..q });
        let requests = match kind {
            Kind::Requests => admission.requests,
            _ => back(admission.requests),
        };
        Ok(Err(Refusal { kind, limit, retry_after, requests, tokens: admission.tokens }))
    }
}

/// The token estimate a turn was admitted with; [`settle`](Self::settle) replaces it with the
/// real usage. Dropped unsettled (the turn failed before a reply), the estimate stays counted.
#[derive(Debug)]
pub struct Ticket {
    counter: Arc<dyn Counter>,
    key: String,
    entry: String,
}

impl std::fmt::Debug for dyn Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counter")
    }
}

impl Ticket {
    /// Counts `tokens` (prompt and completion, as the provider reported them) instead of the
    /// estimate. A store failure is logged: the reply has been produced and is not withheld.
    pub async fn settle(self, tokens: u64) {
        if self.entry.is_empty() {
            return;
        }
        if let Err(e) = self.counter.set(&self.key, &self.entry, tokens.max(1)).await {
            tracing::warn!("could not settle a token estimate: {e}");
        }
    }
}

/// A concurrent-stream slot, given back when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    counter: Arc<dyn Counter>,
    key: String,
    entry: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let (counter, key, entry) =
            (self.counter.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.entry));
        // Dropped with a response body, outside any async context that could await the store.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = counter.set(&key, &entry, 0).await {
                    tracing::warn!("could not release a stream slot (it expires on its own): {e}");
                }
            });
        }
    }
}

tokio::task_local! {
    /// The ticket of the request being served, from the API layer to the conversation.
    static TICKET: RefCell<Option<Ticket>>;
}

/// Runs `f` (a request's handler) with `ticket` available to [`take_ticket`].
pub async fn with_ticket<F: Future>(ticket: Option<Ticket>, f: F) -> F::Output {
    TICKET.scope(RefCell::new(ticket), f).await
}

/// The current request's ticket, once: the turn that takes it settles it.
pub fn take_ticket() -> Option<Ticket> {
    TICKET.try_with(|t| t.borrow_mut().take()).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requests: u32, tokens: u32, streams: u32) -> RequestLimits {
        RequestLimits {
            requests_per_minute: requests,
            tokens_per_minute: tokens,
            concurrent_streams: streams,
            ..RequestLimits::default()
        }
    }

    fn limiter(l: RequestLimits) -> Limiter {
        Limiter::with_counter(&l, Duration::from_secs(600), Arc::new(LocalCounter::default()))
    }

    /// A turn refused by its tokens gives its request back; a settled ticket frees tokens.
    #[tokio::test]
    async fn refusals_take_nothing_and_tickets_settle() {
        let limiter = limiter(limits(10, 100, 0));
        let first = limiter.admit("k", 90, false).await.unwrap().unwrap();
        assert_eq!(first.requests.unwrap().remaining, 9);
        assert_eq!(first.tokens.unwrap().remaining, 10);
        let refused = limiter.admit("k", 20, false).await.unwrap().unwrap_err();
        assert_eq!((refused.kind, refused.requests.unwrap().remaining), (Kind::Tokens, 9));
        first.ticket.unwrap().settle(5).await;
        let second = limiter.admit("k", 20, false).await.unwrap().unwrap();
        assert_eq!((second.requests.unwrap().remaining, second.tokens.unwrap().remaining), (8, 75));
    }

    /// Stream slots come back when dropped; turns that do not stream take none.
    #[tokio::test]
    async fn stream_slots_come_back() {
        let limiter = limiter(limits(0, 0, 1));
        let first = limiter.admit("k", 1, true).await.unwrap().unwrap();
        assert!(limiter.admit("k", 1, false).await.unwrap().is_ok());
        let refused = limiter.admit("k", 1, true).await.unwrap().unwrap_err();
        assert_eq!(refused.kind, Kind::Streams);
        assert!(refused.message().contains("1 concurrent streams"));
        drop(first);
        // The slot is given back by a spawned task; wait for it with a bound.
        for _ in 0..100 {
            if limiter.admit("k", 1, true).await.unwrap().is_ok() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the stream slot never came back");
    }
}
