//! The plugins serving right now, swapped atomically, with the rollout of new versions: a new
//! version of a serving plugin becomes a candidate that takes a share of the traffic (all of it
//! by default) while the old version stands by; the candidate is promoted after enough good
//! calls or rolled back as soon as its failures exceed the allowed rate. Requests that fail on
//! a candidate are retried on the stable version, so clients do not notice a bad release.
//!
//! It also keeps the last staging failure of each file and a short history of transitions, for
//! `/status`.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::{Error, Step};
use super::stage::Plugin;

/// How many transitions `/status` remembers.
const HISTORY: usize = 100;

/// How a new version of a serving plugin is rolled out (`[rollout]` in the config file or a
/// manifest; the manifest wins).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rollout {
    /// Share of requests the candidate serves, in (0, 1].
    pub share: f64,
    /// Calls the candidate must serve before it is promoted; 0 promotes at once.
    pub requests: u32,
    /// Highest failure rate over those calls that still promotes.
    pub max_error_rate: f64,
}

impl Default for Rollout {
    fn default() -> Self {
        // Twenty calls judge a release quickly under load while a single blip (5%) passes.
        Self { share: 1.0, requests: 20, max_error_rate: 0.05 }
    }
}

impl Rollout {
    /// Checks the ranges, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.share > 0.0 && self.share <= 1.0) {
            return Err(format!("rollout.share {} is outside (0, 1]", self.share));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return Err(format!("rollout.max_error_rate {} is outside [0, 1]", self.max_error_rate));
        }
        Ok(())
    }
}

/// A new version on probation.
pub struct Candidate {
    pub plugin: Arc<Plugin>,
    pub rollout: Rollout,
    calls: AtomicU32,
    failures: AtomicU32,
}

impl Candidate {
    /// (calls, failures) so far.
    pub fn counts(&self) -> (u32, u32) {
        (self.calls.load(Ordering::SeqCst), self.failures.load(Ordering::SeqCst))
    }
}

/// The versions of one plugin id.
pub struct Slot {
    /// The version that has proven itself (or the first one loaded).
    pub stable: Arc<Plugin>,
    pub candidate: Option<Candidate>,
}

/// Which version serves a request, and which one takes over if it fails.
#[derive(Clone)]
pub struct Route {
    pub primary: Arc<Plugin>,
    /// The stable version, when the primary is a candidate.
    pub backup: Option<Arc<Plugin>>,
}

/// A change in what serves, for `/status` and the log.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub plugin: String,
    /// `loaded`, `candidate`, `promoted`, `rolled-back`, `failed` or `unloaded`.
    pub event: &'static str,
    pub version: Option<String>,
    pub reason: Option<String>,
}

/// The last failed staging (or rollback) of one manifest file.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: Error,
    pub at: OffsetDateTime,
    /// For a rollback: the fingerprint of the version refused, so the same files are not
    /// rolled out again until they change.
    pub rejected: Option<String>,
}

impl Failure {
    /// The step that failed.
    pub fn step(&self) -> Step {
        self.error.step
    }
}

/// Loaded plugins by id. Readers take a snapshot and keep using it for their whole request, so
/// a swap never disturbs a call in flight.
#[derive(Default)]
pub struct Registry {
    slots: ArcSwap<BTreeMap<String, Arc<Slot>>>,
    failures: Mutex<BTreeMap<PathBuf, Failure>>,
    history: Mutex<VecDeque<Transition>>,
}

impl Registry {
    /// The stable version of `id`, if loaded.
    pub fn get(&self, id: &str) -> Option<Arc<Plugin>> {
        self.slots.load().get(id).map(|s| s.stable.clone())
    }

    /// Which version of `id` serves the next request.
    pub fn route(&self, id: &str) -> Option<Route> {
        let slots = self.slots.load();
        let slot = slots.get(id)?;
        match &slot.candidate {
            Some(c) if c.rollout.share >= 1.0 || crate::random::unit() < c.rollout.share => {
                Some(Route { primary: c.plugin.clone(), backup: Some(slot.stable.clone()) })
            }
            _ => Some(Route { primary: slot.stable.clone(), backup: None }),
        }
    }

    /// Every loaded plugin's stable version, by id.
    pub fn snapshot(&self) -> BTreeMap<String, Arc<Plugin>> {
        self.slots.load().iter().map(|(id, s)| (id.clone(), s.stable.clone())).collect()
    }

    /// Every slot, by id.
    pub fn slots(&self) -> Arc<BTreeMap<String, Arc<Slot>>> {
        self.slots.load_full()
    }

    /// Puts `plugin` in service. A first version serves at once; a new version of a serving
    /// plugin becomes a candidate under `rollout` (or is promoted at once if `rollout.requests`
    /// is 0), replacing any earlier candidate. Returns false, installing nothing, if these
    /// exact files were rolled back while they were being staged.
    pub fn install(&self, plugin: Plugin, rollout: Rollout) -> bool {
        let plugin = Arc::new(plugin);
        let id = plugin.manifest.id.clone();
        {
            let mut failures = self.lock_failures();
            if failures.get(&plugin.manifest_path).is_some_and(|f| f.rejected.as_deref() == Some(&plugin.fingerprint)) {
                return false;
            }
            failures.remove(&plugin.manifest_path);
        }
        let version = Some(plugin.manifest.version.to_string());
        let mut event = "loaded";
        self.slots.rcu(|slots| {
            let mut next = BTreeMap::clone(slots);
            let slot = match slots.get(&id) {
                None => {
                    event = "loaded";
                    Slot { stable: plugin.clone(), candidate: None }
                }
                Some(_) if rollout.requests == 0 => {
                    event = "promoted";
                    Slot { stable: plugin.clone(), candidate: None }
                }
                Some(current) => {
                    event = "candidate";
                    let candidate = Candidate {
                        plugin: plugin.clone(),
                        rollout,
                        calls: AtomicU32::new(0),
                        failures: AtomicU32::new(0),
                    };
                    Slot { stable: current.stable.clone(), candidate: Some(candidate) }
                }
            };
            next.insert(id.clone(), Arc::new(slot));
            next
        });
        self.note(&id, event, version, None);
        true
    }

    /// Records how a call on `plugin` went (`ok` is false only for faults of the plugin or its
    /// vendor), and promotes or rolls back a candidate once the evidence is in.
    pub fn outcome(&self, plugin: &Arc<Plugin>, ok: bool) {
        let slots = self.slots.load();
        let Some(slot) = slots.get(&plugin.manifest.id) else { return };
        let Some(candidate) = slot.candidate.as_ref().filter(|c| Arc::ptr_eq(&c.plugin, plugin)) else { return };
        let calls = candidate.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let failures = candidate.failures.fetch_add(u32::from(!ok), Ordering::SeqCst) + u32::from(!ok);
        let allowed = (candidate.rollout.max_error_rate * f64::from(candidate.rollout.requests)).floor() as u32;
        if failures > allowed {
            let reason = format!(
                "{failures} of its first {calls} calls failed (at most {allowed} of {} allowed)",
                candidate.rollout.requests
            );
            self.conclude(plugin, false, reason);
        } else if calls >= candidate.rollout.requests {
            self.conclude(plugin, true, format!("{failures} of {calls} calls failed"));
        }
    }

    /// Promotes or rolls back `candidate`, if it is still the candidate.
    fn conclude(&self, candidate: &Arc<Plugin>, promote: bool, reason: String) {
        let id = &candidate.manifest.id;
        let mut concluded = false;
        self.slots.rcu(|slots| {
            let mut next = BTreeMap::clone(slots);
            concluded = false;
            if let Some(slot) = slots.get(id)
                && slot.candidate.as_ref().is_some_and(|c| Arc::ptr_eq(&c.plugin, candidate))
            {
                let stable = if promote { candidate.clone() } else { slot.stable.clone() };
                next.insert(id.clone(), Arc::new(Slot { stable, candidate: None }));
                concluded = true;
            }
            next
        });
        if !concluded {
            return;
        }
        let version = Some(candidate.manifest.version.to_string());
        if promote {
            self.note(id, "promoted", version, Some(reason));
        } else {
            let error = Error {
                file: candidate.manifest_path.clone(),
                step: Step::Rollout,
                reason: format!("rolled back: {reason}"),
            };
            let failure =
                Failure { error, at: OffsetDateTime::now_utc(), rejected: Some(candidate.fingerprint.clone()) };
            self.lock_failures().insert(failure.error.file.clone(), failure);
            self.note(id, "rolled-back", version, Some(reason));
        }
    }

    /// Takes `id` out of service; calls in flight finish on the version they hold.
    pub fn unload(&self, id: &str) -> bool {
        let mut removed = None;
        self.slots.rcu(|slots| {
            let mut next = BTreeMap::clone(slots);
            removed = next.remove(id);
            next
        });
        if let Some(slot) = removed {
            self.lock_failures().remove(&slot.stable.manifest_path);
            self.note(id, "unloaded", Some(slot.stable.manifest.version.to_string()), None);
            return true;
        }
        false
    }

    /// Records a failed staging; whatever was serving keeps serving.
    pub fn record_failure(&self, error: Error) {
        let id = error.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        self.note(&id, "failed", None, Some(format!("{} failed: {}", error.step, error.reason)));
        self.lock_failures()
            .insert(error.file.clone(), Failure { error, at: OffsetDateTime::now_utc(), rejected: None });
    }

    /// Whether the version with `fingerprint` was rolled back from `file` already.
    pub fn rejected(&self, file: &std::path::Path, fingerprint: &str) -> bool {
        self.lock_failures().get(file).is_some_and(|f| f.rejected.as_deref() == Some(fingerprint))
    }

    /// Forgets the failure recorded for `file`.
    pub fn clear_failure(&self, file: &std::path::Path) {
        self.lock_failures().remove(file);
    }

    /// Failures by manifest file.
    pub fn failures(&self) -> BTreeMap<PathBuf, Failure> {
        self.lock_failures().clone()
    }

    /// Recent transitions, oldest first.
    pub fn history(&self) -> Vec<Transition> {
        self.history.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    fn note(&self, plugin: &str, event: &'static str, version: Option<String>, reason: Option<String>) {
        match event {
            "failed" | "rolled-back" => tracing::warn!(plugin, event, version, reason, "plugin transition"),
            _ => tracing::info!(plugin, event, version, reason, "plugin transition"),
        }
        let transition =
            Transition { at: OffsetDateTime::now_utc(), plugin: plugin.to_string(), event, version, reason };
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(transition);
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, Failure>> {
        // The map is plain data; a panic elsewhere cannot leave it inconsistent.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}
