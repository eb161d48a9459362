//! `just bench`: what tracing costs a `POST /chat` round trip, side by side in one run: the
//! server with OpenTelemetry off, and on, exporting every span to a local OTLP/HTTP receiver.
//! Each side runs in a child process of its own (the tracing subscriber is process-wide), in
//! alternating rounds so that noise on the machine falls on both.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use codexcontinue::config::{Config, Env, StoreKind};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use support::{Server, quantile, root};

const ROUNDS: usize = 3;
const REQUESTS: usize = 300;
/// Set in the children: where to export to, or `off`.
const CHILD: &str = "CODEXCONTINUE_BENCH_OTLP";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    match std::env::var(CHILD) {
        Ok(endpoint) => runtime.block_on(child(endpoint)),
        Err(_) => runtime.block_on(parent()),
    }
}

/// Starts the receiver, runs the rounds, prints the table.
async fn parent() {
    let spans = Arc::new(AtomicUsize::new(0));
    let counted = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| async move {
            let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
            let n: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
            counted.fetch_add(n, Ordering::Relaxed);
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        off.extend(run_child("off"));
        on.extend(run_child(&receiver));
    }
    println!(
        "## Tracing cost (`POST /chat`, echo, memory store, {} requests a side in {ROUNDS} alternating rounds, µs)\n",
        ROUNDS * REQUESTS
    );
    println!("| OpenTelemetry | p50 | p99 | mean |\n|---|---|---|---|");
    let (off_row, off_p50) = row(off);
    let (on_row, on_p50) = row(on);
    println!("| off | {off_row} |\n| on, every span exported | {on_row} |");
    println!("\np50 ratio on/off: {:.2}; spans received: {}", on_p50 / off_p50, spans.load(Ordering::Relaxed));
}

fn run_child(endpoint: &str) -> Vec<Duration> {
    let output = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, endpoint)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running the bench child");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .map(|us| Duration::from_micros(us.parse().unwrap()))
        .collect()
}

fn row(mut samples: Vec<Duration>) -> (String, f64) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / samples.len() as f64;
    let p50 = quantile(&samples, 0.5, 1e6);
    (format!("{p50:.0} | {:.0} | {mean:.0}", quantile(&samples, 0.99, 1e6)), p50)
}

/// One side: a server traced as `endpoint` says, REQUESTS round trips, samples in µs on stdout.
async fn child(endpoint: String) {
    let env: Env = match endpoint.as_str() {
        "off" => Env::default(),
        url => [("OTEL_EXPORTER_OTLP_ENDPOINT", url)].into_iter().collect(),
    };
    let telemetry = codexcontinue::cli::init_tracing(&env);
    assert_eq!(telemetry.is_on(), endpoint != "off");
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: data.path().to_path_buf(),
        plugins_dir: root().join("plugins"),
        store: StoreKind::Memory,
        cache_dir: Some(root().join("target/bench-plugin-cache")),
        ..Config::default()
    };
    let server = Server::start(config, env).await;
    let client = reqwest::Client::new();
    let url = format!("{}/chat", server.url);
    let body = serde_json::json!({ "message": "hello there, how are you today?", "provider": "echo" });
    for _ in 0..50 {
        client.post(&url).json(&body).send().await.unwrap().bytes().await.unwrap();
    }
    let mut samples = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let r = client.post(&url).json(&body).send().await.unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
        samples.push(started.elapsed().as_micros());
    }
    server.stop().await;
    telemetry.flush();
    let text: Vec<String> = samples.iter().map(u128::to_string).collect();
    println!("{}", text.join(" "));
}
