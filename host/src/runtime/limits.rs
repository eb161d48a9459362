//! Per-plugin limits and the meter that enforces them inside one call's `Store`.

use std::time::Duration;

use super::engine::EPOCH_TICK;

/// What one plugin may use per call, from its manifest's `[limits]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory, in MiB.
    pub memory_mb: u32,
    /// Wall-clock deadline for a whole call, host calls included.
    pub timeout: Duration,
    /// Time the guest may spend running its own code (not waiting on the host), per call.
    pub cpu: Duration,
    /// Calls in flight at once; more wait for a slot until their deadline.
    pub max_concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        // LLM replies can take minutes to stream, while a provider's own work is JSON mapping:
        // a generous wall clock and a tight CPU budget.
        Self { memory_mb: 64, timeout: Duration::from_secs(120), cpu: Duration::from_secs(2), max_concurrency: 32 }
    }
}

/// Counts what a call uses and says why it was stopped.
///
/// CPU is counted in epoch ticks during which the guest ran. A tick that follows one of our host
/// calls is not counted: the guest was waiting on the network, not computing (an await that
/// spans ticks shows up as one callback when the guest resumes; notes/wit-spike.md, pitfall c).
#[derive(Debug)]
pub(crate) struct Meter {
    memory_limit: usize,
    tick_budget: u64,
    ticks: u64,
    host_calls: u64,
    host_calls_seen: u64,
    /// The guest asked for more memory than its limit.
    pub memory_denied: bool,
    /// The guest ran out of CPU budget and was interrupted.
    pub cpu_exhausted: bool,
}

impl Meter {
    pub fn new(limits: &Limits) -> Self {
        let tick_ms = EPOCH_TICK.as_millis().max(1) as u64;
        Self {
            memory_limit: (limits.memory_mb as usize) << 20,
            tick_budget: (limits.cpu.as_millis() as u64).div_ceil(tick_ms).max(1),
            ticks: 0,
            host_calls: 0,
            host_calls_seen: 0,
            memory_denied: false,
            cpu_exhausted: false,
        }
    }

    /// Marks that the guest waited on the host, so the next tick is not billed as CPU.
    pub fn host_call(&mut self) {
        self.host_calls += 1;
    }

    /// Called at each epoch tick the guest observes; false once the CPU budget is spent.
    pub fn tick(&mut self) -> bool {
        if self.host_calls != self.host_calls_seen {
            self.host_calls_seen = self.host_calls;
        } else {
            self.ticks += 1;
        }
        if self.ticks > self.tick_budget {
            self.cpu_exhausted = true;
        }
        !self.cpu_exhausted
    }
}

impl wasmtime::ResourceLimiter for Meter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; no honest adapter needs more than this.
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks after a host call are free; consecutive ticks of pure guest work exhaust the budget.
    #[test]
    fn ticks_after_host_calls_are_not_billed() {
        let mut meter = Meter::new(&Limits { cpu: EPOCH_TICK * 3, ..Limits::default() });
        for _ in 0..10 {
            meter.host_call();
            assert!(meter.tick());
        }
        assert!(meter.tick());
        assert!(meter.tick());
        assert!(meter.tick());
        assert!(!meter.tick());
        assert!(meter.cpu_exhausted);
    }

    /// Growth past the limit is refused and remembered, so the trap can be reported as such.
    #[test]
    fn memory_growth_past_the_limit_is_denied() {
        use wasmtime::ResourceLimiter;
        let mut meter = Meter::new(&Limits { memory_mb: 1, ..Limits::default() });
        assert!(meter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!meter.memory_denied);
        assert!(!meter.memory_growing(1 << 20, (1 << 20) + 65536, None).unwrap());
        assert!(meter.memory_denied);
    }
}
