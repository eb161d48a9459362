//! Leveled logging through the host's `log` import; the host tags each line with the plugin id,
//! version and request id, so messages need not repeat them. Never log a secret or a full request.

use crate::bindings::provider::codexcontinue::plugin::log::{Level, log};

/// Logs at trace level: step-by-step detail, normally filtered out.
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message.as_ref());
}

/// Logs at debug level: detail useful when diagnosing a plugin.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

/// Logs at info level: notable, expected events.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

/// Logs at warn level: something unexpected that the plugin recovered from.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

/// Logs at error level: a failure the operator should look at.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}
