//! What the benchmarks share: the repository root, a real server on 127.0.0.1:0 started through
//! `codexcontinue::serve`, percentiles and the process's resident memory.

#![allow(dead_code)] // each bench uses a different part

use std::path::{Path, PathBuf};
use std::time::Duration;

use codexcontinue::config::{Config, Env};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A server running in this process.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Serves `config` (its `bind` is replaced by an ephemeral port).
    pub async fn start(mut config: Config, env: Env) -> Self {
        config.bind = "127.0.0.1:0".parse().unwrap();
        let listener = tokio::net::TcpListener::bind(config.bind).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(codexcontinue::serve(listener, config, env, async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        while !client.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { url, stop, task }
    }

    /// Stops serving and waits for the server to drain.
    pub async fn stop(self) {
        self.stop.send(()).ok();
        self.task.await.unwrap().unwrap();
    }
}

/// The `q` quantile of sorted `samples`, in `unit`s (1e6 for µs, 1e3 for ms).
pub fn quantile(sorted: &[Duration], q: f64, unit: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q) as usize].as_secs_f64() * unit
}

/// Resident memory of this process, in MiB.
pub fn rss_mib() -> f64 {
    rss_mib_of("self")
}

/// CPU time (user + system) process `pid` ("self" for this one) has used, in seconds.
pub fn cpu_secs_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and
    // 13th, in USER_HZ ticks (100 a second on Linux).
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / 100.0
}

/// Resident memory of process `pid` ("self" for this one), in MiB; 0 when it is gone.
pub fn rss_mib_of(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}
