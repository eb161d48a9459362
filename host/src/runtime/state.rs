//! The data of one call's `Store`: resources, WASI context, the plugin's capabilities and the
//! meter. Built fresh for every call and dropped with it, so nothing leaks between requests.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::{Limits, Meter};
use super::stderr::CapturedOutput;
use crate::capabilities::Capabilities;

/// How much of a guest's stdout/stderr is kept for the log, per call.
const CAPTURED_OUTPUT_BYTES: usize = 16 << 10;

/// Everything host functions can reach during one call.
pub struct HostState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    pub(crate) caps: Arc<Capabilities>,
    pub(crate) meter: Meter,
    pub(crate) output: CapturedOutput,
}

impl HostState {
    /// State for one call of a plugin with `caps` under `limits`.
    ///
    /// The WASI context grants no files, no environment, no network and no arguments: a plugin
    /// reaches the outside only through our own capability interfaces.
    pub(crate) fn new(caps: Arc<Capabilities>, limits: &Limits) -> Self {
        let output = CapturedOutput::new(CAPTURED_OUTPUT_BYTES).masking(caps.http.secrets().masker().clone());
        let wasi = WasiCtx::builder().stdout(output.clone()).stderr(output.clone()).build();
        Self { table: ResourceTable::new(), wasi, caps, meter: Meter::new(limits), output }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
