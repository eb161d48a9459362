//! Collects what a plugin did besides answering: its log lines, the egress the host refused and
//! what it wrote to stdout/stderr. The host reports all three as `tracing` events; every call a
//! [`TestHost`](crate::TestHost) makes runs under a dispatcher of its own, so two hosts in
//! parallel tests never see each other's events.
//!
//! The events are also printed through libtest's capture (shown for failing tests, or with
//! `--nocapture`), filtered by `RUST_LOG` (default: the plugin's own lines and host warnings).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::{EnvFilter, Registry};

/// Modules of the host whose events the capture reads. The host logs guest lines from its `log`
/// capability, refusals from the capabilities that reach out, and guest output from the call
/// guard.
const LOG_MODULE: &str = "codexcontinue::capabilities::log";
const DENIAL_MODULES: &[&str] = &[
    "codexcontinue::capabilities::http",
    "codexcontinue::capabilities::dial",
    "codexcontinue::capabilities::postgres",
];
const CALL_MODULE: &str = "codexcontinue::runtime::call";

/// What the harness prints when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "warn,plugin=trace";

/// The level of a plugin's log line, as the plugin chose it (`log::info(...)` in the SDK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `log::trace`.
    Trace,
    /// `log::debug`.
    Debug,
    /// `log::info`.
    Info,
    /// `log::warn`.
    Warn,
    /// `log::error`.
    Error,
}

impl From<tracing::Level> for Level {
    fn from(level: tracing::Level) -> Self {
        match level {
            tracing::Level::TRACE => Level::Trace,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::INFO => Level::Info,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::ERROR => Level::Error,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        })
    }
}

/// One line a plugin logged through the `log` capability, as the host received it (lines over
/// 4 KiB are cut, as in production).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: Level,
    /// Its text.
    pub message: String,
}

/// A request the host refused to let the plugin make: a destination outside its allow-list, a
/// private address, or a secret placeholder sent where that secret may not go. The plugin got a
/// `denied` error value; no request left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The host's log message, e.g. `denied outbound request` or `denied secret: ...`.
    pub message: String,
    /// The origin the plugin tried to reach (`http://127.0.0.1:8080`), or the host name when
    /// the name resolved to a private address.
    pub destination: String,
}

/// What one host has captured so far.
#[derive(Debug, Default)]
struct Records {
    logs: Vec<LogLine>,
    denials: Vec<Denial>,
    output: Vec<String>,
}

/// The shared capture of one [`TestHost`](crate::TestHost) and the dispatcher that fills it.
#[derive(Clone)]
pub(crate) struct Capture {
    records: Arc<Mutex<Records>>,
    dispatch: Dispatch,
}

impl Capture {
    pub fn new() -> Self {
        let records = Arc::new(Mutex::new(Records::default()));
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
        let print = tracing_subscriber::fmt::layer().with_test_writer().with_filter(filter);
        let subscriber = Registry::default().with(Collector { records: records.clone() }).with(print);
        Self { records, dispatch: Dispatch::new(subscriber) }
    }

    /// The dispatcher calls run under.
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.lock().logs.clone()
    }

    pub fn denials(&self) -> Vec<Denial> {
        self.lock().denials.clone()
    }

    pub fn output(&self) -> Vec<String> {
        self.lock().output.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The layer that sorts the host's events into [`Records`].
struct Collector {
    records: Arc<Mutex<Records>>,
}

impl<S: Subscriber> Layer<S> for Collector {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let Some(module) = meta.module_path() else { return };
        let is_denial = DENIAL_MODULES.contains(&module) && *meta.level() == tracing::Level::WARN;
        if module != LOG_MODULE && module != CALL_MODULE && !is_denial {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if module == LOG_MODULE {
            records.logs.push(LogLine { level: (*meta.level()).into(), message: fields.message });
        } else if is_denial {
            if fields.message.starts_with("denied") {
                let destination = fields.values.remove("destination").or_else(|| fields.values.remove("host"));
                records.denials.push(Denial { message: fields.message, destination: destination.unwrap_or_default() });
            }
        } else if let Some(output) = fields.message.strip_prefix("guest output: ") {
            records.output.push(output.to_string());
        } else if let Some(output) = fields.values.remove("output").filter(|o| !o.is_empty()) {
            records.output.push(output);
        }
    }
}

/// An event's message and other fields, as text.
#[derive(Default)]
struct Fields {
    message: String,
    values: BTreeMap<String, String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            name => drop(self.values.insert(name.to_string(), value.to_string())),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields and the formatted message arrive here; both print as their text.
        self.record_str(field, &format!("{value:?}"));
    }
}
