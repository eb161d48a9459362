//! The set of plugins serving right now, swapped atomically, plus the last staging failure of
//! each file so `/status` can say what went wrong and when.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use time::OffsetDateTime;

use super::error::{Error, Step};
use super::stage::Plugin;

/// Loaded plugins by id. Readers take a snapshot and keep using it for their whole request, so
/// a swap never disturbs a call in flight.
#[derive(Default)]
pub struct Registry {
    plugins: ArcSwap<BTreeMap<String, Arc<Plugin>>>,
    failures: Mutex<BTreeMap<PathBuf, Failure>>,
}

/// The last failed staging of one manifest file.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: Error,
    pub at: OffsetDateTime,
}

impl Registry {
    /// The plugin with `id`, if loaded.
    pub fn get(&self, id: &str) -> Option<Arc<Plugin>> {
        self.plugins.load().get(id).cloned()
    }

    /// Every loaded plugin, by id.
    pub fn snapshot(&self) -> Arc<BTreeMap<String, Arc<Plugin>>> {
        self.plugins.load_full()
    }

    /// Puts `plugin` in service, replacing any plugin with the same id; clears the file's
    /// failure. Returns the replaced plugin.
    pub fn install(&self, plugin: Plugin) -> Option<Arc<Plugin>> {
        let plugin = Arc::new(plugin);
        self.lock_failures().remove(&plugin.manifest_path);
        let previous = self.plugins.load().get(&plugin.manifest.id).cloned();
        self.plugins.rcu(|current| {
            let mut next = BTreeMap::clone(current);
            next.insert(plugin.manifest.id.clone(), plugin.clone());
            next
        });
        previous
    }

    /// Records a failed staging; whatever was serving keeps serving.
    pub fn record_failure(&self, error: Error) {
        self.lock_failures().insert(error.file.clone(), Failure { error, at: OffsetDateTime::now_utc() });
    }

    /// Failures by manifest file.
    pub fn failures(&self) -> BTreeMap<PathBuf, Failure> {
        self.lock_failures().clone()
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, Failure>> {
        // The map is plain data; a panic elsewhere cannot leave it inconsistent.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Failure {
    /// The step that failed.
    pub fn step(&self) -> Step {
        self.error.step
    }
}
