//! When to try again: which failures are worth a retry of the same provider, which are worth
//! falling back to the next one, and how long to wait (exponential backoff with jitter, or the
//! vendor's own `Retry-After`).

use std::time::Duration;

use super::Error;
use crate::config::ProvidersConfig;
use crate::runtime::types::ProviderError;

/// Whether the same provider may succeed if asked again shortly: rate limits, outages,
/// overload, timeouts.
pub fn retryable(error: &Error) -> bool {
    matches!(
        error,
        Error::Upstream {
            error: ProviderError::RateLimited(_)
                | ProviderError::Unavailable(_)
                | ProviderError::Overloaded(_)
                | ProviderError::Timeout(_),
            ..
        }
    )
}

/// Whether another provider may succeed where this one failed: it is down, overloaded, crashing
/// or refusing our key. Faults of the request itself (bad request, unknown model) are not.
pub fn worth_falling_back(error: &Error) -> bool {
    match error {
        Error::Upstream { error, .. } => matches!(
            error,
            ProviderError::RateLimited(_)
                | ProviderError::Unavailable(_)
                | ProviderError::Overloaded(_)
                | ProviderError::Timeout(_)
                | ProviderError::Unauthorized(_)
        ),
        Error::Runtime(_) => true,
        _ => false,
    }
}

/// Whether the plugin itself (not its vendor or the request) failed: it crashed, ran out of a
/// limit, or could not make sense of the vendor's reply. This is what judges a new version.
pub fn plugin_at_fault(error: &Error) -> bool {
    matches!(error, Error::Runtime(_) | Error::Upstream { error: ProviderError::Other(_), .. })
}

/// How long to wait before retry number `attempt` (0 for the first retry).
pub fn delay(config: &ProvidersConfig, attempt: u32, error: &Error) -> Duration {
    if let Error::Upstream { error, .. } = error
        && let Some(ms) = error.retry_after_ms()
    {
        return Duration::from_millis(ms);
    }
    let ceiling = config.backoff_ms.saturating_mul(1 << attempt.min(16)).min(config.max_backoff_ms);
    // Half fixed, half random ("equal jitter"): clients that failed together spread out, yet
    // nobody retries immediately.
    Duration::from_millis(ceiling / 2 + crate::random::u64() % (ceiling / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::PluginLabel;
    use crate::runtime::types::RateLimit;

    fn upstream(error: ProviderError) -> Error {
        Error::Upstream { plugin: PluginLabel { id: "p".into(), version: "1".into() }, error }
    }

    /// Backoff doubles up to the cap, with jitter inside [ceiling/2, ceiling].
    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let config = ProvidersConfig { backoff_ms: 100, max_backoff_ms: 1000, ..ProvidersConfig::default() };
        let error = upstream(ProviderError::Unavailable(RateLimit { retry_after_ms: None, message: "down".into() }));
        for (attempt, ceiling) in [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1000), (30, 1000)] {
            for _ in 0..20 {
                let ms = delay(&config, attempt, &error).as_millis() as u64;
                assert!((ceiling / 2..=ceiling).contains(&ms), "attempt {attempt}: {ms} ms");
            }
        }
    }

    /// A vendor's Retry-After wins over the computed backoff.
    #[test]
    fn retry_after_wins() {
        let error =
            upstream(ProviderError::RateLimited(RateLimit { retry_after_ms: Some(1500), message: String::new() }));
        assert_eq!(delay(&ProvidersConfig::default(), 0, &error), Duration::from_millis(1500));
    }

    /// Outages are retried and fallen back from; request faults are neither.
    #[test]
    fn classification() {
        let down = upstream(ProviderError::Unavailable(RateLimit { retry_after_ms: None, message: "x".into() }));
        let bad = upstream(ProviderError::BadRequest("x".into()));
        let key = upstream(ProviderError::Unauthorized("x".into()));
        assert!(retryable(&down) && worth_falling_back(&down));
        assert!(!retryable(&bad) && !worth_falling_back(&bad));
        assert!(!retryable(&key) && worth_falling_back(&key));
        assert!(!worth_falling_back(&Error::Unknown("x".into())));
    }
}
