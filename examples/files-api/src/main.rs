//! The `files-api` binary: read `FILES_*` settings, set up logging, serve until Ctrl-C.

use std::process::ExitCode;

use files_api::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = std::env::var("FILES_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_default())
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("files-api: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let running = match files_api::serve(config).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("files-api: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("files-api: waiting for Ctrl-C: {e}");
    }
    running.shutdown().await;
    ExitCode::SUCCESS
}
