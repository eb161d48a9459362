//! Group commit for sled: every durable write waits for a flush (fsync) that started after the
//! write, and writes that arrive while a flush runs share the next one. Concurrent turns thus
//! pay for one fsync between them instead of one each, and "acknowledged means durable" holds
//! for every one of them.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{Error, Result};

type Waiter = oneshot::Sender<std::result::Result<(), String>>;

/// The flushing thread of one sled database.
pub struct GroupCommit {
    queue: Option<mpsc::Sender<Waiter>>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the thread that flushes `db`. Its own OS thread, not tokio's blocking pool: sled
    /// 0.34's `flush_async` pool hangs under concurrent flushes, and one thread is all a
    /// group commit needs.
    pub fn start(db: sled::Db) -> Result<Self> {
        let (queue, waiting) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("sled-flush".into())
            .spawn(move || {
                while let Ok(first) = waiting.recv() {
                    // Everyone queued by now wrote before this flush starts, so it covers them.
                    let batch: Vec<Waiter> = std::iter::once(first).chain(waiting.try_iter()).collect();
                    metrics::histogram!("codexcontinue_store_flush_batch").record(batch.len() as f64);
                    let flushed = db.flush().map(drop).map_err(|e| format!("flushing: {e}"));
                    for waiter in batch {
                        let _ = waiter.send(flushed.clone());
                    }
                }
            })
            .map_err(|e| Error::Unavailable(format!("starting the flush thread: {e}")))?;
        Ok(Self { queue: Some(queue), thread: Some(thread) })
    }

    /// Returns once everything written before the call is on disk.
    pub async fn flush(&self) -> Result<()> {
        let stopped = || Error::Unavailable("the store is closing".into());
        let (done, flushed) = oneshot::channel();
        self.queue.as_ref().ok_or_else(stopped)?.send(done).map_err(|_| stopped())?;
        flushed.await.map_err(|_| stopped())?.map_err(Error::Unavailable)
    }
}

impl Drop for GroupCommit {
    /// Waits for the thread, so that its handle on the database is gone when the store is: a
    /// restart in the same process can open the directory again at once.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
