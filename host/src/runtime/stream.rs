//! The `sink` a streaming provider writes its reply into: a bounded channel to the API layer.

use tokio::sync::mpsc;
use wasmtime::component::Resource;

use super::bindings::latest::provider::codexcontinue::plugin::streaming::{Host, HostSink};
use super::state::HostState;
use super::types::StreamEvent;

/// Events waiting for a slow client before the guest is made to wait too.
pub const STREAM_BUFFER: usize = 32;

/// Host side of the WIT `sink` resource.
pub struct Sink {
    tx: mpsc::Sender<StreamEvent>,
}

impl Sink {
    pub(crate) fn new(tx: mpsc::Sender<StreamEvent>) -> Self {
        Self { tx }
    }
}

impl Host for HostState {}

impl HostSink for HostState {
    async fn emit(&mut self, sink: Resource<Sink>, event: StreamEvent) -> wasmtime::Result<()> {
        self.meter.host_call();
        let tx = self.table.get(&sink)?.tx.clone();
        // A closed channel means the client went away; the call is about to be dropped, so the
        // event is simply discarded.
        let _ = tx.send(event).await;
        Ok(())
    }

    async fn drop(&mut self, sink: Resource<Sink>) -> wasmtime::Result<()> {
        // Guests only ever borrow the sink; the host deletes its own handle after the call.
        if sink.owned() {
            self.table.delete(sink)?;
        }
        Ok(())
    }
}
