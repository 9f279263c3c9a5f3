//! The `latchkey` binary: parse the command line, set up logging, run, report errors.

use std::process::ExitCode;

use clap::Parser;
use latchkey::Config;
use latchkey::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    // aws-lc seeds its generator from CPU jitter entropy on first use (tens of milliseconds);
    // start that now, beside config and database work, instead of on the first key or token.
    std::thread::spawn(|| {
        let mut warm = [0u8; 1];
        let _ = aws_lc_rs::rand::fill(&mut warm);
    });
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("latchkey: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = std::env::var("LATCHKEY_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok());
    latchkey::logging::init(config.log_format, filter.as_deref());
    for variable in &config.unknown_variables {
        tracing::warn!(variable, "unknown LATCHKEY_ variable ignored (a typo?)");
    }
    tracing::debug!(?config, "effective configuration");
    match cli.run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            ExitCode::FAILURE
        }
    }
}
