//! The `codexcontinue` binary: loads `.env`, parses the command line and runs it.

use std::process::ExitCode;

use clap::Parser;
use codexcontinue::cli::{self, Cli};
use codexcontinue::config::Env;

#[tokio::main]
async fn main() -> ExitCode {
    let env = Env::capture();
    let cli = Cli::parse();
    let _telemetry = cli::init_tracing(&env);
    match cli::run(cli, env).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
