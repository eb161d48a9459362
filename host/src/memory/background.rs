//! The memory manager's background work (summaries, embeddings): at most one job per key at a
//! time; a request that arrives while its job runs makes the job run once more afterwards, so
//! no turn is left behind. Jobs are owned here and stopped on shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

/// Jobs in flight, by key; the flag says another run was requested meanwhile.
type Busy = Arc<Mutex<HashMap<String, bool>>>;

#[derive(Default)]
pub struct Background {
    tasks: Mutex<JoinSet<()>>,
    busy: Busy,
}

impl Background {
    /// Runs `job` for `key`, or, if that key's job is running, has it run once more after.
    pub fn request<F, Fut>(&self, key: String, job: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        {
            let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(again) = busy.get_mut(&key) {
                *again = true;
                return;
            }
            busy.insert(key.clone(), false);
        }
        let busy = self.busy.clone();
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // Reap finished jobs so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            loop {
                job().await;
                let mut busy = busy.lock().unwrap_or_else(|e| e.into_inner());
                match busy.get_mut(&key) {
                    Some(again) if *again => *again = false,
                    _ => {
                        busy.remove(&key);
                        break;
                    }
                }
            }
        });
    }

    /// Whether a job with `key` is running.
    pub fn is_busy(&self, key: &str) -> bool {
        self.busy.lock().unwrap_or_else(|e| e.into_inner()).contains_key(key)
    }

    /// Stops every job and waits for them to end.
    pub async fn shutdown(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Requests during a run coalesce into exactly one more run.
    #[tokio::test]
    async fn requests_during_a_run_run_it_once_more() {
        let background = Background::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let job = |runs: Arc<AtomicUsize>| {
            move || {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        for _ in 0..5 {
            background.request("k".into(), job(runs.clone()));
        }
        while background.is_busy("k") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
