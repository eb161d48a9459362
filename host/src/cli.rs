//! The command line: `serve`, `plugins list|validate|inspect|new`, `export`, `import`, `compact`,
//! `keys new`, `healthcheck`. Flags
//! fall back to `CODEXCONTINUE_*` environment variables (clap's `env`), then to
//! `codexcontinue.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::auth::{ADMIN_TOKEN_VAR, API_KEYS_VAR, ApiKeys};
use crate::config::{Config, EdgeConfig, Env, FileConfig, ProvidersConfig, RequestLimits, StoreKind};
use crate::memory::export;
use crate::plugins::{Loader, Registry, Reloader, Rollout};
use crate::runtime::{PoolConfig, Runtime, RuntimeConfig};
use crate::telemetry::Telemetry;

/// A self-hosted, memory-augmented LLM backend with WebAssembly provider plugins.
#[derive(Debug, Parser)]
#[command(name = "codexcontinue", version, about)]
pub struct Cli {
    /// The configuration file (missing is fine).
    #[arg(long, global = true, env = "CODEXCONTINUE_CONFIG", default_value = "codexcontinue.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Inspect plugins without serving.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Write a user's memory (sessions, messages, summaries, embeddings) as JSONL.
    Export {
        /// Whose memory.
        #[arg(long)]
        user: String,
        /// The file to write; standard output if absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The store to read, configured as for `serve`.
        #[command(flatten)]
        store: ServeArgs,
    },
    /// Read a JSONL export into the configured store; sessions it already has are skipped.
    Import {
        /// The export to read; `-` for standard input.
        file: PathBuf,
        /// The store to write, configured as for `serve`.
        #[command(flatten)]
        store: ServeArgs,
    },
    /// Manage client API keys (`CODEXCONTINUE_API_KEYS`).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Rewrite the sled store into fresh files, so deleted conversations no longer linger on
    /// disk. Stop the server first.
    Compact(Dirs),
    /// Exit 0 when a running server answers `GET /healthz`, 1 otherwise (for container
    /// HEALTHCHECKs, which have no shell or curl in a scratch image).
    Healthcheck {
        /// The server's base URL; default: the address `serve` binds, with 0.0.0.0 or [::] read
        /// as loopback.
        #[arg(long)]
        url: Option<String>,
        /// The address `serve` binds, when `--url` is absent.
        #[arg(long, env = "CODEXCONTINUE_BIND")]
        bind: Option<SocketAddr>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random key for USER as a `user:key` entry for CODEXCONTINUE_API_KEYS.
    New {
        /// The user the key will act as.
        user: String,
    },
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CODEXCONTINUE_BIND")]
    pub bind: Option<SocketAddr>,
    #[command(flatten)]
    pub dirs: Dirs,
    /// `sled` (default), `memory` (nothing kept), or a memory plugin id.
    #[arg(long, env = "CODEXCONTINUE_STORE")]
    pub store: Option<String>,
    /// Provider for requests that name none (default: the first with its key set, else echo).
    #[arg(long, env = "CODEXCONTINUE_PROVIDER")]
    pub provider: Option<String>,
    /// Model for the default provider when a request names none.
    #[arg(long, env = "CODEXCONTINUE_MODEL")]
    pub model: Option<String>,
    /// Largest request body in bytes.
    #[arg(long, env = "CODEXCONTINUE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Longest chat message in characters.
    #[arg(long, env = "CODEXCONTINUE_MAX_MESSAGE_CHARS")]
    pub max_message_chars: Option<usize>,
    /// Chat turns per API key (per user without keys) in any 60 s; 0 = unlimited.
    #[arg(long, env = "CODEXCONTINUE_REQUESTS_PER_MINUTE")]
    pub requests_per_minute: Option<u32>,
    /// Tokens per API key in any 60 s; 0 = unlimited.
    #[arg(long, env = "CODEXCONTINUE_TOKENS_PER_MINUTE")]
    pub tokens_per_minute: Option<u32>,
    /// Streamed replies in flight per API key; 0 = unlimited.
    #[arg(long, env = "CODEXCONTINUE_CONCURRENT_STREAMS")]
    pub concurrent_streams: Option<u32>,
    /// `redis://host:port/db` where hosts count their shared limits.
    #[arg(long, env = "CODEXCONTINUE_LIMITS_SHARED")]
    pub limits_shared: Option<String>,
    /// Reload plugins when their files change (default true).
    #[arg(long, env = "CODEXCONTINUE_WATCH")]
    pub watch: Option<bool>,
    #[command(flatten)]
    pub edge: EdgeArgs,
}

/// The network edge's flags (`[edge]` in the file).
#[derive(Debug, Args, Default)]
pub struct EdgeArgs {
    /// A host name (optionally name:port) clients may address; repeat, or comma-separate in the
    /// variable. Default: the loopback names when bound to loopback, else any (with a warning).
    #[arg(long = "allowed-host", env = "CODEXCONTINUE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// A web origin (https://app.example) allowed to call cross-origin (CORS); none by default.
    #[arg(long = "cors-origin", env = "CODEXCONTINUE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Longest wait for a request head, and for the next one on an idle connection, in ms.
    #[arg(long, env = "CODEXCONTINUE_HEADER_TIMEOUT_MS")]
    pub header_timeout_ms: Option<u64>,
    /// Longest a request body may take to arrive, in ms.
    #[arg(long, env = "CODEXCONTINUE_BODY_TIMEOUT_MS")]
    pub body_timeout_ms: Option<u64>,
    /// Open connections at most; more are answered 503.
    #[arg(long, env = "CODEXCONTINUE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// After SIGTERM/SIGINT, how long requests and streams in flight may take to finish, in ms.
    #[arg(long, env = "CODEXCONTINUE_SHUTDOWN_GRACE_MS")]
    pub shutdown_grace_ms: Option<u64>,
}

impl EdgeArgs {
    fn resolve(self, file: Option<EdgeConfig>) -> anyhow::Result<EdgeConfig> {
        let file = file.unwrap_or_default();
        let or = |flag: Vec<String>, file: Vec<String>| if flag.is_empty() { file } else { flag };
        let edge = EdgeConfig {
            allowed_hosts: or(self.allowed_hosts, file.allowed_hosts),
            cors_origins: or(self.cors_origins, file.cors_origins),
            header_timeout_ms: self.header_timeout_ms.unwrap_or(file.header_timeout_ms),
            body_timeout_ms: self.body_timeout_ms.unwrap_or(file.body_timeout_ms),
            max_connections: self.max_connections.unwrap_or(file.max_connections),
            shutdown_grace_ms: self.shutdown_grace_ms.unwrap_or(file.shutdown_grace_ms),
        };
        for (name, ms) in [("header_timeout_ms", edge.header_timeout_ms), ("body_timeout_ms", edge.body_timeout_ms)] {
            anyhow::ensure!(ms >= 100, "{name} must be at least 100");
        }
        anyhow::ensure!(edge.max_connections >= 1, "max_connections must be at least 1");
        Ok(edge)
    }
}

#[derive(Debug, Args, Default)]
pub struct Dirs {
    /// Where the sled store and the compile cache live.
    #[arg(long, env = "CODEXCONTINUE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The plugins directory.
    #[arg(long, env = "CODEXCONTINUE_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
}

impl Dirs {
    fn resolve(self, file: &FileConfig) -> (PathBuf, PathBuf) {
        let d = Config::default();
        (
            self.data_dir.or_else(|| file.data_dir.clone()).unwrap_or(d.data_dir),
            self.plugins_dir.or_else(|| file.plugins_dir.clone()).unwrap_or(d.plugins_dir),
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Create a plugin crate from a template: manifest, source, a harness test and a README.
    New(crate::scaffold::NewArgs),
    /// Stage every plugin in the plugins directory and report each one.
    List(Dirs),
    /// Stage one plugin (its manifest or its .wasm) and report what is wrong, if anything.
    Validate {
        /// `<id>.toml` or `<id>.wasm`; the other must sit beside it.
        file: PathBuf,
        #[command(flatten)]
        dirs: Dirs,
    },
    /// Show everything about one plugin: interfaces, grants after environment overrides,
    /// limits, rollout and what it says about itself.
    Inspect {
        /// `<id>.toml` or `<id>.wasm`; the other must sit beside it.
        file: PathBuf,
        #[command(flatten)]
        dirs: Dirs,
    },
}

impl ServeArgs {
    /// Merges flags/environment over the file over defaults; secrets come from `env` only.
    pub fn resolve(self, file: FileConfig, env: &Env) -> anyhow::Result<Config> {
        let d = Config::default();
        let plugin_grants = crate::config::operator_grants(&file);
        let (data_dir, plugins_dir) = self.dirs.resolve(&file);
        let store =
            self.store.or(file.store).map(|s| s.parse::<StoreKind>()).transpose().map_err(anyhow::Error::msg)?;
        let mut limits = file.limits.unwrap_or_default();
        limits.max_body_bytes = self.max_body_bytes.unwrap_or(limits.max_body_bytes);
        limits.max_message_chars = self.max_message_chars.unwrap_or(limits.max_message_chars);
        limits.requests_per_minute = self.requests_per_minute.unwrap_or(limits.requests_per_minute);
        limits.tokens_per_minute = self.tokens_per_minute.unwrap_or(limits.tokens_per_minute);
        limits.concurrent_streams = self.concurrent_streams.unwrap_or(limits.concurrent_streams);
        limits.shared = self.limits_shared.or(limits.shared);
        check_limits(&limits)?;
        Ok(Config {
            bind: self.bind.or(file.bind).unwrap_or(d.bind),
            data_dir,
            plugins_dir,
            store: store.unwrap_or(d.store),
            providers: ProvidersConfig {
                default: self.provider.or(file.providers.default.clone()),
                model: self.model.or(file.providers.model.clone()),
                ..file.providers
            },
            limits,
            memory: file.memory.unwrap_or_default(),
            cache_dir: None,
            watch: self.watch.or(file.watch).unwrap_or(d.watch),
            rollout: match file.rollout {
                Some(rollout) => {
                    rollout.validate().map_err(anyhow::Error::msg)?;
                    rollout
                }
                None => d.rollout,
            },
            admin_token: env
                .get(ADMIN_TOKEN_VAR)
                .map(|t| crate::auth::check_admin_token(t).map(|()| t.to_string()))
                .transpose()
                .map_err(anyhow::Error::msg)?,
            api_keys: ApiKeys::parse(env.get(API_KEYS_VAR).unwrap_or_default()).map_err(anyhow::Error::msg)?,
            plugin_grants,
            edge: self.edge.resolve(file.edge)?,
        })
    }
}

fn check_limits(limits: &RequestLimits) -> anyhow::Result<()> {
    anyhow::ensure!(limits.max_body_bytes >= 1024, "max_body_bytes must be at least 1024");
    anyhow::ensure!(limits.max_message_chars >= 1, "max_message_chars must be at least 1");
    if let Some(url) = &limits.shared {
        // Never quote the address: it may carry a password.
        anyhow::ensure!(
            url.starts_with("redis://") || url.starts_with("rediss://"),
            "[limits] shared must be a redis:// or rediss:// address"
        );
    }
    Ok(())
}

/// Runs the parsed command line.
pub async fn run(cli: Cli, env: Env) -> anyhow::Result<ExitCode> {
    let file = FileConfig::load(&cli.config)?;
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve(file, &env)?;
            let listener = tokio::net::TcpListener::bind(config.bind)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
            crate::serve(listener, config, env, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { user, out, store } => {
            let state = crate::start(store.resolve(file, &env)?, env).await?;
            let store = state.memory.store().clone();
            let counts = match out {
                Some(path) => {
                    let mut writer = std::io::BufWriter::new(
                        std::fs::File::create(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                    );
                    export::export(store.as_ref(), &user, &mut writer).await?
                }
                None => export::export(store.as_ref(), &user, &mut std::io::stdout().lock()).await?,
            };
            eprintln!(
                "exported {} sessions, {} messages, {} summaries, {} embeddings",
                counts.sessions, counts.messages, counts.summaries, counts.embeddings
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { file: path, store } => {
            let state = crate::start(store.resolve(file, &env)?, env).await?;
            let store = state.memory.store().clone();
            let counts = if path.as_os_str() == "-" {
                export::import(store.as_ref(), std::io::stdin().lock()).await?
            } else {
                let reader = std::io::BufReader::new(
                    std::fs::File::open(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                );
                export::import(store.as_ref(), reader).await?
            };
            eprintln!(
                "imported {} sessions, {} messages, {} summaries, {} embeddings",
                counts.sessions, counts.messages, counts.summaries, counts.embeddings
            );
            if !counts.skipped_sessions.is_empty() {
                eprintln!(
                    "skipped {} sessions the store already has: {}",
                    counts.skipped_sessions.len(),
                    counts.skipped_sessions.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCommand::New { user }) => {
            anyhow::ensure!(crate::auth::valid_user(&user), "a user id is 1-128 letters, digits and ._@-");
            println!("{user}:{}", crate::auth::generate());
            eprintln!("add this entry to {API_KEYS_VAR} (comma-separated), in the environment or .env");
            Ok(ExitCode::SUCCESS)
        }
        Command::Compact(dirs) => {
            let (data_dir, _) = dirs.resolve(&file);
            let store = data_dir.join("store");
            let done = crate::store::SledStore::compact(&store).map_err(|e| anyhow::anyhow!("compacting: {e}"))?;
            eprintln!("compacted {}: {} bytes before, {} after", store.display(), done.bytes_before, done.bytes_after);
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck { url, bind } => {
            let url = url.unwrap_or_else(|| local_url(bind.or(file.bind).unwrap_or(Config::default().bind)));
            Ok(healthcheck(&url).await)
        }
        Command::Plugins(PluginsCommand::New(args)) => crate::scaffold::run(&args),
        Command::Plugins(PluginsCommand::List(dirs)) => {
            let (data_dir, plugins_dir) = dirs.resolve(&file);
            // Listing loads each plugin but connects to no database: `validate` is the check that does.
            list(&loader(env, &data_dir, &file)?.init_memory_only(None), &plugins_dir).await
        }
        Command::Plugins(PluginsCommand::Inspect { file: path, dirs }) => {
            let (data_dir, _) = dirs.resolve(&file);
            match crate::inspect::inspect(&loader(env, &data_dir, &file)?, &path, file.rollout.unwrap_or_default())
                .await
            {
                Ok(report) => {
                    print!("{report}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("invalid: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Plugins(PluginsCommand::Validate { file: path, dirs }) => {
            let (data_dir, _) = dirs.resolve(&file);
            validate(&loader(env, &data_dir, &file)?, &path).await
        }
    }
}

/// How long `healthcheck` waits for an answer: well under the 30 s a container runtime gives a
/// check by default, long enough for a busy server.
const HEALTHCHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The URL that reaches a server bound to `bind` from the same host.
fn local_url(bind: SocketAddr) -> String {
    let ip = match bind.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, bind.port()))
}

/// `GET {url}/healthz`: success on a 200, failure (said on stderr) on anything else.
async fn healthcheck(url: &str) -> ExitCode {
    let healthz = format!("{}/healthz", url.trim_end_matches('/'));
    let client = match reqwest::Client::builder().timeout(HEALTHCHECK_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("unhealthy: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&healthz).send().await {
        Ok(response) if response.status().is_success() => {
            println!("ok: {healthz}");
            ExitCode::SUCCESS
        }
        Ok(response) => {
            eprintln!("unhealthy: {healthz} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {healthz}: {}", root_cause(&e));
            ExitCode::FAILURE
        }
    }
}

/// The innermost cause ("Connection refused (os error 111)"); reqwest's own text says only
/// "error sending request for url (…)".
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

fn loader(env: Env, data_dir: &Path, file: &FileConfig) -> anyhow::Result<Loader> {
    let cache_dir = data_dir.join("cache");
    let pool = PoolConfig::default();
    let max_memory_mb = pool.max_memory_mb;
    let runtime =
        Runtime::new(RuntimeConfig { pool, cache_dir: Some(cache_dir) }).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    Ok(Loader::new(runtime, Arc::new(env), max_memory_mb).with_grants(crate::config::operator_grants(file)))
}

async fn list(loader: &Loader, dir: &Path) -> anyhow::Result<ExitCode> {
    let registry = Arc::new(Registry::default());
    let reloader = Reloader::new(loader.clone(), registry.clone(), dir.to_path_buf(), Rollout::default());
    reloader.sync().await.map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    println!("{:<16} {:<10} {:<9} {:<8} detail", "id", "version", "kind", "state");
    for plugin in registry.snapshot().values() {
        let detail = match plugin.provider() {
            Some(p) if !p.missing.is_empty() => format!("needs {}", p.missing.join(", ")),
            Some(p) => format!("default model {}", p.info.default_model),
            None => String::new(),
        };
        let kind = plugin.manifest.kind.world().as_str();
        println!("{:<16} {:<10} {:<9} {:<8} {detail}", plugin.manifest.id, plugin.manifest.version, kind, "ok");
    }
    let failures = registry.failures();
    for failure in failures.values() {
        let id = failure.error.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        println!("{id:<16} {:<10} {:<9} {:<8} {}: {}", "-", "-", "failed", failure.error.step, failure.error.reason);
    }
    Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn validate(loader: &Loader, path: &Path) -> anyhow::Result<ExitCode> {
    let manifest = path.with_extension("toml");
    match loader.stage(&manifest).await {
        Ok(plugin) => {
            let kind = plugin.manifest.kind.world().as_str();
            println!("ok: {} is a {kind} plugin built for WIT {}", plugin.label(), plugin.manifest.wit);
            if let Some(p) = plugin.provider() {
                println!("  provider {:?}, default model {}", p.info.name, p.info.default_model);
                if !p.missing.is_empty() {
                    println!("  not configured here: set {}", p.missing.join(", "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("invalid: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

/// The log filter: `directives` (`RUST_LOG`) or our defaults, and in any case never wasi's
/// debug lines that quote what a guest writes to stdout/stderr byte for byte: the host logs
/// that output itself, with secrets masked (`runtime/stderr.rs`).
pub fn log_filter(directives: Option<&str>) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    const DEFAULT: &str = "info,tower_http=info,sled=warn,wasmtime=warn,cranelift=warn,tokio_postgres=warn";
    let filter = directives.and_then(|d| EnvFilter::try_new(d).ok()).unwrap_or_else(|| EnvFilter::new(DEFAULT));
    filter.add_directive("wasmtime_wasi::p2::write_stream=info".parse().expect("a valid directive"))
}

/// Logs to stderr (`RUST_LOG` filters, `CODEXCONTINUE_LOG_FORMAT=json` switches to JSON lines)
/// and, when an OTLP endpoint is set, exports traces; keep the returned guard until exit.
pub fn init_tracing(env: &Env) -> Telemetry {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = log_filter(std::env::var(tracing_subscriber::EnvFilter::DEFAULT_ENV).ok().as_deref());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match std::env::var("CODEXCONTINUE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        true => fmt.json().with_filter(filter).boxed(),
        false => fmt.with_filter(filter).boxed(),
    };
    let (telemetry, refused) = match Telemetry::start(env) {
        Ok(telemetry) => (telemetry, None),
        Err(e) => (Telemetry::default(), Some(e)),
    };
    tracing_subscriber::registry().with(fmt).with(telemetry.layer()).init();
    // Logged only now: before `init` there was no subscriber to write them.
    match (refused, telemetry.endpoint()) {
        (Some(e), _) => tracing::error!("traces are not exported: {e}"),
        (None, Some(endpoint)) => tracing::info!(%endpoint, "exporting traces over OTLP"),
        (None, None) => {}
    }
    telemetry
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server bound to every interface is checked through loopback, on its own port.
    #[test]
    fn healthcheck_reaches_the_bound_port_through_loopback() {
        assert_eq!(local_url("0.0.0.0:8080".parse().unwrap()), "http://127.0.0.1:8080");
        assert_eq!(local_url("[::]:9000".parse().unwrap()), "http://[::1]:9000");
        assert_eq!(local_url("10.1.2.3:80".parse().unwrap()), "http://10.1.2.3:80");
    }

    /// Rate limits: a flag beats the file, the file beats the default (off); a shared store
    /// that is not Redis is refused without quoting the address.
    #[test]
    fn rate_limits_from_flags_and_file() {
        use clap::Parser;
        let file: FileConfig = toml::from_str("[limits]\nrequests_per_minute = 10\ntokens_per_minute = 500\n").unwrap();
        let serve = |args: &[&str]| match Cli::try_parse_from([&["codexcontinue", "serve"], args].concat()).unwrap() {
            Cli { command: Command::Serve(args), .. } => args,
            _ => unreachable!(),
        };
        let config = serve(&["--requests-per-minute", "3"]).resolve(file.clone(), &Env::default()).unwrap();
        assert_eq!((config.limits.requests_per_minute, config.limits.tokens_per_minute), (3, 500));
        assert_eq!((config.limits.concurrent_streams, config.limits.shared.as_deref()), (0, None));
        let error = serve(&["--limits-shared", "http://user:pw@example.com"])
            .resolve(file, &Env::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("redis://") && !error.contains("pw"), "{error}");
    }
}
