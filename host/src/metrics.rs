//! Prometheus metrics at `GET /metrics`. Code anywhere records through the `metrics` facade;
//! this module installs the process-wide recorder once and renders it.
//!
//! Names: `codexcontinue_http_requests_total` / `_http_request_duration_seconds` (method, route,
//! status), `codexcontinue_plugin_calls_total` / `_plugin_call_duration_seconds` (plugin,
//! version, outcome), `codexcontinue_plugin_transitions_total` (plugin, event),
//! `codexcontinue_provider_retries_total` and `_provider_fallbacks_total` (provider).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: from a fast plugin call to a long streamed reply.
const BUCKETS: &[f64] =
    &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// How often buffered histogram samples are folded into their buckets.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The process's recorder, installed on first use. A process has one recorder, so servers
/// started in the same process (tests) share it.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder =
            PrometheusBuilder::new().set_buckets(BUCKETS).expect("static buckets are valid").build_recorder();
        let handle = recorder.handle();
        // Histograms buffer every sample until they are drained; without a scraper the buffer
        // would grow with every request (about 16 kB a second at 1,000 rps).
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP);
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread can be spawned at startup");
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    handle().render()
}
