//! One guarded call into a plugin: take a concurrency slot, build a fresh `Store`, instantiate
//! from the pre-instantiated component, run, and turn whatever went wrong into an [`Error`].
//!
//! A trapped instance is never reused: every call gets its own `Store`, dropped at the end, and
//! dropping the call's future (client gone, timeout) drops the `Store` and returns its pool slot.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::limits::Limits;
use super::state::HostState;
use super::{Error, Runtime};
use crate::capabilities::Capabilities;

/// What every loaded plugin carries, whatever its world.
pub(crate) struct Guard {
    /// Holding the runtime keeps its epoch ticker alive as long as any plugin can be called;
    /// without ticks, a spinning guest could never be interrupted or timed out.
    runtime: Runtime,
    pub caps: Arc<Capabilities>,
    pub limits: Limits,
    slots: Arc<Semaphore>,
}

/// A pre-instantiated component of some world.
pub(crate) trait Instantiate: Send + Sync {
    type Bindings: Send;
    fn instantiate(
        &self,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self::Bindings>> + Send;
}

impl Guard {
    pub fn new(runtime: Runtime, caps: Arc<Capabilities>, limits: Limits) -> Self {
        let slots = Arc::new(Semaphore::new(limits.max_concurrency as usize));
        Self { runtime, caps, limits, slots }
    }

    /// Runs `f` against a fresh instance from `pre`, within the plugin's limits.
    pub async fn run<P, T, F>(&self, pre: &P, f: F) -> Result<T, Error>
    where
        P: Instantiate,
        F: AsyncFnOnce(&mut Store<HostState>, P::Bindings) -> wasmtime::Result<T>,
    {
        let plugin = &self.caps.plugin;
        let started = Instant::now();
        let result = self.guarded(pre, f).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(Error::Trap { .. }) => "trap",
            Err(Error::OutOfMemory { .. }) => "out_of_memory",
            Err(Error::CpuExhausted { .. }) => "cpu_exhausted",
            Err(Error::Timeout { .. }) => "timeout",
            Err(Error::Busy { .. }) => "busy",
            Err(Error::InvalidOutput { .. }) => "invalid_output",
            Err(Error::Instantiate { .. }) => "instantiate",
        };
        let labels = [("plugin", plugin.id.clone()), ("version", plugin.version.clone())];
        metrics::counter!(
            "codexcontinue_plugin_calls_total",
            &[&labels[..], &[("outcome", outcome.to_string())]].concat()
        )
        .increment(1);
        metrics::histogram!("codexcontinue_plugin_call_duration_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn guarded<P, T, F>(&self, pre: &P, f: F) -> Result<T, Error>
    where
        P: Instantiate,
        F: AsyncFnOnce(&mut Store<HostState>, P::Bindings) -> wasmtime::Result<T>,
    {
        let plugin = &self.caps.plugin;
        let deadline = Instant::now() + self.limits.timeout;
        let _slot = match timeout_at(deadline, self.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(Error::Busy { plugin: plugin.clone(), slots: self.limits.max_concurrency }),
        };

        let mut store = Store::new(self.runtime.engine(), HostState::new(self.caps.clone(), &self.limits));
        store.limiter(|state| &mut state.meter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            if cx.data_mut().meter.tick() {
                // Yield through tokio so its timers and IO keep running while guests compute
                // (notes/wit-spike.md, pitfall b).
                Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
            } else {
                Ok(UpdateDeadline::Interrupt)
            }
        });

        let work = async {
            let bindings = pre
                .instantiate(&mut store)
                .await
                .map_err(|e| Error::Instantiate { plugin: plugin.clone(), reason: format!("{e:#}") })?;
            let result = f(&mut store, bindings).await;
            Ok::<_, Error>((result, store))
        };
        let (result, store) = match timeout_at(deadline, work).await {
            Err(_) => {
                return Err(Error::Timeout { plugin: plugin.clone(), timeout_ms: self.limits.timeout.as_millis() });
            }
            Ok(outcome) => outcome?,
        };

        let state = store.data();
        let output = state.output.text();
        match result {
            Ok(value) => {
                if !output.is_empty() {
                    tracing::info!(target: "plugin", plugin = %plugin, "guest output: {output}");
                }
                Ok(value)
            }
            Err(e) => {
                let error = self.classify(&e, state);
                tracing::warn!(target: "plugin", plugin = %plugin, output = %output, "plugin call failed: {e:?}");
                Err(error)
            }
        }
    }

    fn classify(&self, e: &wasmtime::Error, state: &HostState) -> Error {
        let plugin = self.caps.plugin.clone();
        if state.meter.cpu_exhausted {
            Error::CpuExhausted { plugin, budget_ms: self.limits.cpu.as_millis() }
        } else if state.meter.memory_denied {
            Error::OutOfMemory { plugin, limit_mb: self.limits.memory_mb }
        } else if let Some(trap) = e.downcast_ref::<Trap>() {
            Error::Trap { plugin, reason: trap.to_string() }
        } else {
            // Host-side failures inside the call (a bad resource handle, an invalid string
            // lifted from guest memory) are the guest's fault too.
            Error::Trap { plugin, reason: e.root_cause().to_string() }
        }
    }
}
