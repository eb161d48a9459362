//! The process-wide wasmtime `Engine` and the thread that ticks its epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Guests yield to the scheduler at every tick and CPU budgets are
/// counted in ticks, so this is the granularity of both.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Sizes of the instance pool, shared by all plugins.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Component instances alive at once across all plugins (one per call in flight).
    pub instances: u32,
    /// The largest linear memory any plugin may ask for, in MiB.
    pub max_memory_mb: u32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        // 256 concurrent calls is far beyond what 2-8 cores serve, and costs only address space.
        Self { instances: 256, max_memory_mb: 512 }
    }
}

/// Builds the engine: component model, async, epoch interruption and a pooling allocator
/// (instantiation from a pool costs ~15 µs against ~30 µs on demand; notes/wit-spike.md).
pub fn new_engine(pool: &PoolConfig) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // Guests are small adapters; 512 KiB of wasm stack is plenty and keeps pooled stacks cheap.
    config.max_wasm_stack(512 << 10);
    config.async_stack_size(1 << 20);

    let mut pooling = PoolingAllocationConfig::default();
    pooling.total_component_instances(pool.instances);
    // A wasip2 component instantiates a few core modules (main + shims) and one memory. Each
    // memory slot reserves address space (not RAM), so the pool is sized by instances.
    pooling.total_core_instances(pool.instances * 4);
    pooling.max_core_instances_per_component(16);
    pooling.total_memories(pool.instances);
    pooling.total_tables(pool.instances * 4);
    pooling.total_stacks(pool.instances);
    pooling.max_memory_size((pool.max_memory_mb as usize) << 20);
    // Every call gets a fresh instance; resetting its memory by `madvise` costs a syscall and
    // then a page fault for every page the next call touches. Where PAGEMAP_SCAN (Linux 6.7+)
    // finds the dirty pages, up to 1 MiB of each slot stays resident and only those pages are
    // reset, by `memset`: ~18% less CPU per call (BENCHMARKS.md). Without it, keeping memory
    // resident would `memset` the whole 1 MiB every time, which measured slower than `madvise`.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pooling.pagemap_scan(wasmtime::Enabled::Yes);
        pooling.linear_memory_keep_resident(1 << 20);
        pooling.table_keep_resident(1 << 20);
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a dedicated OS thread.
///
/// Not a tokio task: guests spinning on every worker would starve it, and it is the only thing
/// that can interrupt them (notes/wit-spike.md, pitfall a). Dropping the ticker stops the thread.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch ticker thread");
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
