//! The [`Counter`] trait: a sliding-window log per key, the one primitive behind every limit
//! (requests and tokens per minute, concurrent streams), with the in-process implementation.
//! The shared one is in `redis.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::Error;

/// What a [`Counter::take`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The new entry's id when it fitted, `None` when it was refused.
    pub entry: Option<String>,
    /// The sum of the entries in the window, the new one included when it fitted.
    pub used: u64,
    /// When refused: how long until enough entries expire for it to fit (the whole window
    /// when it never can).
    pub retry_after: Duration,
    /// How long until every entry now in the window has expired.
    pub reset: Duration,
}

/// Entries with an amount, kept for a window per key. An entry fits when the amounts in the
/// last `window`, plus its own, stay within `limit`; checking and adding happen as one atomic
/// step, so concurrent callers (on one host or many) can never together pass the limit.
#[async_trait]
pub trait Counter: Send + Sync {
    /// Adds an entry of `amount` to `key` if it fits.
    async fn take(&self, key: &str, amount: u64, limit: u64, window: Duration) -> Result<Taken, Error>;

    /// Changes the amount of an entry taken before (0 removes it): an estimate settled, a
    /// stream ended. An entry that has expired meanwhile is left alone.
    async fn set(&self, key: &str, entry: &str, amount: u64) -> Result<(), Error>;
}

/// One entry of the in-process log.
#[derive(Debug)]
struct Entry {
    at: Instant,
    id: u64,
    amount: u64,
}

/// The counter of one host: a log per key behind one mutex (each step is a few pointer moves).
#[derive(Debug, Default)]
pub struct LocalCounter {
    logs: Mutex<HashMap<String, VecDeque<Entry>>>,
    next_id: AtomicU64,
}

/// Keys kept before empty logs are swept; clients may invent user ids when keys are off.
const SWEEP_AT: usize = 10_000;

#[async_trait]
impl Counter for LocalCounter {
    async fn take(&self, key: &str, amount: u64, limit: u64, window: Duration) -> Result<Taken, Error> {
        let now = Instant::now();
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if logs.len() >= SWEEP_AT {
            logs.retain(|_, log| log.back().is_some_and(|e| now.duration_since(e.at) < window));
        }
        let log = logs.entry(key.to_string()).or_default();
        while log.front().is_some_and(|e| now.duration_since(e.at) >= window) {
            log.pop_front();
        }
        let used: u64 = log.iter().map(|e| e.amount).sum();
        let expires = |e: &Entry| (e.at + window).saturating_duration_since(now);
        if used + amount <= limit {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            log.push_back(Entry { at: now, id, amount });
            return Ok(Taken {
                entry: Some(id.to_string()),
                used: used + amount,
                retry_after: Duration::ZERO,
                reset: window,
            });
        }
        let mut freed = 0;
        let retry_after = log
            .iter()
            .find(|e| {
                freed += e.amount;
                used - freed + amount <= limit
            })
            .map_or(window, expires);
        Ok(Taken { entry: None, used, retry_after, reset: log.back().map_or(Duration::ZERO, expires) })
    }

    async fn set(&self, key: &str, entry: &str, amount: u64) -> Result<(), Error> {
        let Ok(id) = entry.parse::<u64>() else { return Ok(()) };
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(log) = logs.get_mut(key)
            && let Some(at) = log.iter().position(|e| e.id == id)
        {
            match amount {
                0 => drop(log.remove(at)),
                amount => log[at].amount = amount,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// Entries fit until the limit; then the refusal says how long until one expires.
    #[tokio::test]
    async fn fits_until_the_limit() {
        let counter = LocalCounter::default();
        for n in 1..=3 {
            let taken = counter.take("k", 1, 3, MINUTE).await.unwrap();
            assert!(taken.entry.is_some());
            assert_eq!(taken.used, n);
        }
        let refused = counter.take("k", 1, 3, MINUTE).await.unwrap();
        assert_eq!(refused.entry, None);
        assert!(refused.retry_after > Duration::from_secs(59) && refused.retry_after <= MINUTE);
        assert!(counter.take("other", 1, 3, MINUTE).await.unwrap().entry.is_some());
    }

    /// Settling an entry to a smaller amount (or removing it) makes room again.
    #[tokio::test]
    async fn settling_makes_room() {
        let counter = LocalCounter::default();
        let estimate = counter.take("k", 80, 100, MINUTE).await.unwrap().entry.unwrap();
        assert!(counter.take("k", 30, 100, MINUTE).await.unwrap().entry.is_none());
        counter.set("k", &estimate, 10).await.unwrap();
        let taken = counter.take("k", 30, 100, MINUTE).await.unwrap();
        assert_eq!((taken.entry.is_some(), taken.used), (true, 40));
        counter.set("k", &estimate, 0).await.unwrap();
        assert_eq!(counter.take("k", 0, 100, MINUTE).await.unwrap().used, 30);
    }

    /// Entries older than the window no longer count.
    #[tokio::test]
    async fn entries_expire() {
        let counter = LocalCounter::default();
        let window = Duration::from_millis(1);
        counter.take("k", 1, 1, window).await.unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(counter.take("k", 1, 1, window).await.unwrap().entry.is_some());
    }
}
