//! What each provider's recent calls say about it, for `/status` and `/v1/models`: successes,
//! consecutive failures and the last error. Client mistakes (bad request, unknown model) do not
//! count against a provider.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

/// One provider's record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// `unknown` before the first call, `ok` after a success, `failing` after failures.
    pub state: &'static str,
    pub consecutive_failures: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_failure: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// Health of every provider called so far.
#[derive(Default)]
pub struct HealthBook(Mutex<HashMap<String, Health>>);

impl HealthBook {
    pub fn success(&self, id: &str) {
        let mut book = self.lock();
        let health = book.entry(id.to_string()).or_default();
        health.state = "ok";
        health.consecutive_failures = 0;
        health.last_success = Some(OffsetDateTime::now_utc());
    }

    pub fn failure(&self, id: &str, error: String) {
        let mut book = self.lock();
        let health = book.entry(id.to_string()).or_default();
        health.state = "failing";
        health.consecutive_failures += 1;
        health.last_failure = Some(OffsetDateTime::now_utc());
        health.last_error = Some(error);
    }

    /// The record of `id`; `unknown` if it was never called.
    pub fn get(&self, id: &str) -> Health {
        self.lock().get(id).cloned().unwrap_or(Health { state: "unknown", ..Health::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Health>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
