//! `cargo bench --bench proxy` (part of `cargo xtask bench`): what CodexContinue adds to a vendor
//! call, measured side by side with calling the vendor directly, in one run.
//!
//! A Rust mock of OpenAI's API and the load generator (`oha`, open loop with latency
//! correction) share CPU 0; the release server, `target/release/codexcontinue` with the `openai`
//! plugin, runs alone on CPU 1. Every row is measured twice, against the mock directly and
//! through the server, so the ratio holds on a noisy machine even when the microseconds do
//! not. Prints markdown (BENCHMARKS.md keeps the figures).
//!
//! `BENCH_SOAK_SECS=600` adds the soak: 1,000 requests a second for that long, sampling the
//! server's RSS.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use support::{cpu_secs_of, quantile, root, rss_mib_of};

/// The first streamed delta is sent at once, the rest after this gap: a server that forwards
/// deltas as they arrive shows its first event long before the gap ends.
const STREAM_GAP: Duration = Duration::from_millis(25);
const MODEL: &str = "gpt-4.1-mini";

const REPLY: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1764633600,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_bench"}"#;

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764633600,\"model\":\"gpt-4.1-mini-2025-04-14\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n"
    )
}

/// OpenAI's `POST /v1/chat/completions` (a fixed reply, or a stream with a gap after its first
/// delta) and `GET /v1/models`.
async fn upstream() -> String {
    use axum::routing::{get, post};
    async fn completions(body: Bytes) -> Response {
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        let streamed = request["stream"] == true;
        if !streamed {
            return Response::builder().header("content-type", "application/json").body(Body::from(REPLY)).unwrap();
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
        tokio::spawn(async move {
            let first = chunk(r#"{"role":"assistant","content":"Hello","refusal":null}"#, "null");
            let _ = tx.send(Ok(first)).await;
            tokio::time::sleep(STREAM_GAP).await;
            let mut rest = chunk(r#"{"content":"! How can I help you today?"}"#, "null");
            rest += &chunk("{}", "\"stop\"");
            rest += "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764633600,\"model\":\"gpt-4.1-mini-2025-04-14\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_bench\",\"choices\":[],\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":9,\"total_tokens\":28,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\ndata: [DONE]\n\n";
            let _ = tx.send(Ok(rest)).await;
        });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)))
            .unwrap()
    }
    async fn models() -> axum::Json<Value> {
        axum::Json(json!({ "object": "list", "data": [
            { "id": MODEL, "object": "model", "created": 1744316542, "owned_by": "system" },
            { "id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system" },
        ]}))
    }
    let app = axum::Router::new().route("/v1/chat/completions", post(completions)).route("/v1/models", get(models));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    url
}

/// The release server on CPU 1, serving `plugins` with the store in `data`.
struct Gateway {
    child: Child,
    url: String,
}

impl Gateway {
    fn start(plugins: &Path, data: &Path, vendor: &str) -> (Self, Duration) {
        let config = data.join("codexcontinue.toml");
        // Stateless calls and BM25 recall: no background embeddings or summaries.
        std::fs::write(&config, "[memory]\nembeddings = false\nsummaries = false\n").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let started = Instant::now();
        let child = pinned("1", env!("CARGO_BIN_EXE_codexcontinue"))
            .args(["--config", config.to_str().unwrap(), "serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .arg("--plugins-dir")
            .arg(plugins)
            .env("OPENAI_API_KEY", "sk-bench")
            .env("OPENAI_BASE_URL", format!("{vendor}/v1"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(server_log()).unwrap())
            .spawn()
            .expect("the release server");
        eprintln!("proxy: server pid {} (log: {})", child.id(), server_log().display());
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while ureq_status(&format!("{url}/healthz")) != Some(200) {
            assert!(Instant::now() < deadline, "the server did not answer /healthz within 60 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        (Self { child, url }, started.elapsed())
    }

    /// Resident memory, in MiB.
    fn rss_mib(&self) -> f64 {
        rss_mib_of(&self.child.id().to_string())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the server's log goes, for a look when a row fails.
fn server_log() -> PathBuf {
    std::env::temp_dir().join("codexcontinue-proxy-bench.log")
}

/// A blocking GET's status, or `None` when nothing answers.
fn ureq_status(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    use std::io::{Read, Write};
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// `program` pinned to `cpus` when `taskset` is there.
fn pinned(cpus: &str, program: &str) -> Command {
    match Command::new("taskset").arg("--version").output() {
        Ok(_) => {
            let mut command = Command::new("taskset");
            command.args(["-c", cpus, program]);
            command
        }
        Err(_) => Command::new(program),
    }
}

/// What one `oha` run measured.
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    ok: u64,
    failed: u64,
    /// What went wrong, as oha names it, with counts.
    errors: String,
}

/// Runs `oha` on CPU 0 with `args`, POSTing `body` to `url`.
fn oha(url: &str, body: &str, args: &[&str]) -> Load {
    let output = pinned("0", "oha")
        .args(["--no-tui", "--output-format", "json", "-m", "POST", "-T", "application/json", "-d", body])
        .args(args)
        // Requests still running when a `-z` duration ends are waited for, not counted as errors.
        .args(args.contains(&"-z").then_some("-w"))
        .arg(url)
        .output()
        .expect("oha (cargo install oha --locked)");
    assert!(output.status.success(), "oha failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("oha's JSON report");
    let ms = |v: &Value| v.as_f64().unwrap_or(f64::NAN) * 1e3;
    let statuses = report["statusCodeDistribution"].as_object().cloned().unwrap_or_default();
    let ok = statuses.get("200").and_then(Value::as_u64).unwrap_or(0);
    let other: u64 = statuses.iter().filter(|(k, _)| *k != "200").filter_map(|(_, v)| v.as_u64()).sum();
    let errors: u64 =
        report["errorDistribution"].as_object().map(|e| e.values().filter_map(Value::as_u64).sum()).unwrap_or(0);
    Load {
        rps: report["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_ms: ms(&report["latencyPercentiles"]["p50"]),
        p99_ms: ms(&report["latencyPercentiles"]["p99"]),
        ok,
        failed: other + errors,
        errors: format!("{} {}", report["statusCodeDistribution"], report["errorDistribution"]),
    }
}

/// Time to the first streamed content on one keep-alive connection, and to the end.
async fn first_events(url: &str, body: &Value, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).http1_only().build().unwrap();
    let (mut first, mut total) = (Vec::new(), Vec::new());
    for i in 0..n + 20 {
        let started = Instant::now();
        let mut response = client.post(url).json(body).send().await.unwrap();
        assert!(response.status().is_success(), "{url}: {}", response.status());
        let mut seen = String::new();
        let mut at = None;
        while let Some(bytes) = response.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&bytes));
            if at.is_none() && seen.contains("Hello") {
                at = Some(started.elapsed());
            }
        }
        assert!(seen.contains("help you today"), "{url}: the stream ended early ({}): {seen}", server_log().display());
        if i >= 20 {
            first.push(at.expect("the stream carried the first delta"));
            total.push(started.elapsed());
        }
    }
    first.sort();
    total.sort();
    (first, total)
}

fn main() {
    // This process (the mock, the stream client) and oha share CPU 0; the server gets CPU 1.
    let _ = Command::new("taskset").args(["-cp", "0", &std::process::id().to_string()]).output();
    if Command::new("oha").arg("--version").output().is_err() {
        eprintln!("proxy: needs oha on PATH (cargo install oha --locked, or run `cargo xtask bench`)");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let vendor = upstream().await;
    let plugins = root().join("plugins");
    let installed = tempfile::tempdir().unwrap();
    for ext in ["toml", "wasm"] {
        std::fs::copy(plugins.join(format!("openai/openai.{ext}")), installed.path().join(format!("openai.{ext}")))
            .expect("run `cargo xtask build-plugins` first");
    }
    let data = tempfile::tempdir().unwrap();
    let (gateway, _) = Gateway::start(installed.path(), data.path(), &vendor);

    let direct = format!("{vendor}/v1/chat/completions");
    let through = format!("{}/v1/chat/completions", gateway.url);
    let body = json!({ "model": MODEL, "messages": [{ "role": "user", "content": "Say hello." }] }).to_string();
    // Warm both paths (connection pools, the plugin's instance pool, the allocator).
    oha(&direct, &body, &["-c", "4", "-n", "2000"]);
    oha(&through, &body, &["-c", "4", "-n", "2000"]);

    if ["latency", "open-loop", "saturation", "stream"].iter().any(|row| wanted(row)) {
        println!("## Side by side: `POST /v1/chat/completions` through the openai plugin\n");
        println!("| measure | direct to mock | through CodexContinue | added / ratio |\n|---|---|---|---|");
    }
    if wanted("latency") {
        let (d, t) =
            (oha(&direct, &body, &["-c", "1", "-n", "5000"]), oha(&through, &body, &["-c", "1", "-n", "5000"]));
        check(&t);
        println!("{} |", latencies("one connection, 5,000 requests", &d, &t));
    }
    if wanted("open-loop") {
        let open = ["-q", "1000", "-z", "10s", "--latency-correction", "-c", "32"];
        let (d, t) = (oha(&direct, &body, &open), oha(&through, &body, &open));
        check(&t);
        println!("{}; {} failed |", latencies("open loop at 1,000 rps for 10 s", &d, &t), t.failed);
    }
    if wanted("saturation") {
        // CPU per request is the steadier figure on a VM whose neighbours steal cycles: the
        // mock runs in this process, the gateway in its own.
        let closed = ["-c", "64", "-z", "10s"];
        let cpu = |pid: &str, load: &dyn Fn() -> Load| {
            let before = cpu_secs_of(pid);
            let done = load();
            let per_request = (cpu_secs_of(pid) - before) * 1e6 / (done.ok + done.failed).max(1) as f64;
            (done, per_request)
        };
        let server = gateway.child.id().to_string();
        let (d, d_cpu) = cpu("self", &|| oha(&direct, &body, &closed));
        let (t, t_cpu) = cpu(&server, &|| oha(&through, &body, &closed));
        check(&t);
        println!("{}", throughput("max throughput, 64 connections, 10 s", &d, &t));
        println!(
            "| CPU per request at saturation, mock / gateway process (µs) | {d_cpu:.0} | {t_cpu:.0} | ratio {:.3} |",
            d_cpu / t_cpu
        );
    }
    if wanted("stream") {
        let streamed =
            json!({ "model": MODEL, "stream": true, "messages": [{ "role": "user", "content": "Say hello." }] });
        let (d_first, d_total) = first_events(&direct, &streamed, 200).await;
        let (t_first, t_total) = first_events(&through, &streamed, 200).await;
        println!(
            "| first streamed delta on a keep-alive connection, p50 / p99 (ms) | {:.3} / {:.3} | {:.3} / {:.3} | +{:.3} / +{:.3} |",
            quantile(&d_first, 0.5, 1e3),
            quantile(&d_first, 0.99, 1e3),
            quantile(&t_first, 0.5, 1e3),
            quantile(&t_first, 0.99, 1e3),
            quantile(&t_first, 0.5, 1e3) - quantile(&d_first, 0.5, 1e3),
            quantile(&t_first, 0.99, 1e3) - quantile(&d_first, 0.99, 1e3),
        );
        println!(
            "| whole stream, {} ms gap after the first delta, p50 (ms) | {:.3} | {:.3} | +{:.3} |",
            STREAM_GAP.as_millis(),
            quantile(&d_total, 0.5, 1e3),
            quantile(&t_total, 0.5, 1e3),
            quantile(&t_total, 0.5, 1e3) - quantile(&d_total, 0.5, 1e3),
        );
    }
    if wanted("memory") {
        memory_path(&gateway, &through, &body).await;
    }
    soak(&gateway, &through, &body);
    println!("\nServer RSS after the run: {:.0} MiB", gateway.rss_mib());
    drop(gateway);
    if wanted("startup") {
        startup(&plugins, &vendor);
    }
}

/// `cargo bench --bench proxy -- NAME…` runs only the rows named (latency, open-loop,
/// saturation, stream, memory, startup); without names, all of them.
fn wanted(row: &str) -> bool {
    let names: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    names.is_empty() || names.iter().any(|n| n == row)
}

/// A table row: p50 / p99 of `base` and of `other`, then what `other` adds (left open, so a
/// caller can append to the last cell).
fn latencies(measure: &str, base: &Load, other: &Load) -> String {
    format!(
        "| p50 / p99, {measure} (ms) | {:.3} / {:.3} | {:.3} / {:.3} | +{:.3} / +{:.3}",
        base.p50_ms,
        base.p99_ms,
        other.p50_ms,
        other.p99_ms,
        other.p50_ms - base.p50_ms,
        other.p99_ms - base.p99_ms
    )
}

/// A table row: requests per second of `base` and of `other`, and their ratio.
fn throughput(measure: &str, base: &Load, other: &Load) -> String {
    format!("| {measure} (rps) | {:.0} | {:.0} | ratio {:.3} |", base.rps, other.rps, other.rps / base.rps)
}

fn check(load: &Load) {
    assert!(
        load.ok > 0 && load.failed == 0,
        "{} of {} requests failed: {}",
        load.failed,
        load.ok + load.failed,
        load.errors
    );
}

/// `/chat` on a 10,000-message session (BM25 recall, sled with its durable appends) against a
/// stateless call, and concurrent new sessions, where appends can share a flush.
async fn memory_path(gateway: &Gateway, stateless: &str, body: &str) {
    let client = reqwest::Client::new();
    let chat = format!("{}/chat", gateway.url);
    let topics =
        ["deploys", "postgres", "the parser", "billing", "tests", "the web page", "tokens", "auth", "ci", "docs"];
    let mut session = Value::Null;
    for i in 0..5_000 {
        let message = format!("note {i}: about {}, we decided to keep option {} for now", topics[i % 10], i % 7);
        let mut turn = json!({ "message": message });
        if !session.is_null() {
            turn["session_id"] = session.clone();
        }
        let reply: Value =
            client.post(&chat).json(&turn).send().await.unwrap().error_for_status().unwrap().json().await.unwrap();
        session = reply["session_id"].clone();
    }
    let turn = json!({ "message": "what did we decide about postgres?", "session_id": session }).to_string();
    let fresh = json!({ "message": "what did we decide about postgres?" }).to_string();
    let (s, m) = (oha(stateless, body, &["-c", "1", "-n", "1000"]), oha(&chat, &turn, &["-c", "1", "-n", "1000"]));
    check(&m);
    println!("\n## The memory path (sled, BM25 recall)\n");
    println!("| measure | stateless `/v1/chat/completions` | `/chat` | added |\n|---|---|---|---|");
    println!("{} |", latencies("one connection, a 10,000-message session", &s, &m));
    let (s, m) = (oha(stateless, body, &["-c", "16", "-z", "5s"]), oha(&chat, &fresh, &["-c", "16", "-z", "5s"]));
    check(&m);
    println!("{}", throughput("throughput, 16 connections, a new session per turn", &s, &m));
}

/// `BENCH_SOAK_SECS` at 1,000 requests a second, RSS sampled by a thread while oha runs.
fn soak(gateway: &Gateway, url: &str, body: &str) {
    let Some(secs) = std::env::var("BENCH_SOAK_SECS").ok().and_then(|s| s.parse::<u64>().ok()) else { return };
    let pid = gateway.child.id().to_string();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        loop {
            samples.push(rss_mib_of(&pid));
            if stopped.recv_timeout(Duration::from_secs(10)).is_ok() {
                return samples;
            }
        }
    });
    let load = oha(url, body, &["-q", "1000", "-z", &format!("{secs}s"), "--latency-correction", "-c", "32"]);
    stop.send(()).unwrap();
    let rss = sampler.join().unwrap();
    let tenth = (rss.len() / 10).max(1);
    println!("\n## Soak: {secs} s at 1,000 rps through the gateway\n");
    println!(
        "{} requests, {} failed, p50 {:.3} ms, p99 {:.3} ms; RSS MiB first / max / last: {:.0} / {:.0} / {:.0} (mean of the first tenth {:.1}, of the last {:.1})",
        load.ok + load.failed,
        load.failed,
        load.p50_ms,
        load.p99_ms,
        rss[0],
        rss.iter().cloned().fold(0.0, f64::max),
        rss[rss.len() - 1],
        rss[..tenth].iter().sum::<f64>() / tenth as f64,
        rss[rss.len() - tenth..].iter().sum::<f64>() / tenth as f64,
    );
}

/// Warm startup (compile cache filled by a first start) and idle RSS with every plugin.
fn startup(plugins: &Path, vendor: &str) {
    let data = tempfile::tempdir().unwrap();
    drop(Gateway::start(plugins, data.path(), vendor));
    let (gateway, warm) = Gateway::start(plugins, data.path(), vendor);
    println!(
        "\n## Startup and idle memory, every plugin in plugins/\n\n| measure | value |\n|---|---|\n| warm start to `/healthz` 200 (ms) | {:.0} |\n| idle RSS (MiB) | {:.0} |",
        warm.as_secs_f64() * 1e3,
        gateway.rss_mib()
    );
}
