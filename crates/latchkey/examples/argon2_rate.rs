//! How many Argon2id hashes per second this machine's cores allow with the default OWASP
//! parameters (m = 19456 KiB, t = 2, p = 1): one thread per available core, hashing in a loop
//! for a few seconds. The login-throughput benchmark in `bench/` compares against this figure.
//!
//! `cargo run --release -p latchkey --example argon2_rate [seconds] [threads]`
//!
//! Two modes are measured one after the other, each for `seconds` (default 5):
//! - `hash_password`: `PasswordHasher::hash_password`, which allocates (zeroed) its 19 MiB of
//!   blocks on every call, as a server does;
//! - `reused_memory`: `hash_password_into_with_memory` with one block buffer per thread,
//!   allocated once: the pure computation, an upper bound for what the cores allow.
//!
//! Prints one line:
//! `argon2id_hashes_per_sec=<hash_password rate> argon2id_reused_memory_hashes_per_sec=<rate>
//!  threads=<n> seconds=<s>`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, Version};

const PASSWORD: &[u8] = b"correct horse battery staple 7";
const SALT: &[u8] = b"latchkey-argon2-rate-salt";

#[derive(Clone, Copy)]
enum Mode {
    HashPassword,
    ReusedMemory,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args
        .next()
        .map(|s| s.parse())
        .transpose()
        .context("seconds")?
        .unwrap_or(5.0);
    let threads: usize = match args.next() {
        Some(s) => s.parse().context("threads")?,
        None => thread::available_parallelism()
            .map(std::num::NonZeroUsize::get)
            .unwrap_or(1),
    };
    let params = Params::new(19_456, 2, 1, None).map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    let allocating = rate(Mode::HashPassword, &params, threads, seconds)?;
    let reused = rate(Mode::ReusedMemory, &params, threads, seconds)?;
    println!(
        "argon2id_hashes_per_sec={allocating:.1} argon2id_reused_memory_hashes_per_sec={reused:.1} threads={threads} seconds={seconds}"
    );
    Ok(())
}

/// Hashes per second over `threads` threads hashing for `seconds`.
fn rate(mode: Mode, params: &Params, threads: usize, seconds: f64) -> anyhow::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count, params) = (Arc::clone(&stop), Arc::clone(&count), params.clone());
            thread::spawn(move || -> anyhow::Result<()> {
                let blocks = params.block_count();
                let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let mut memory = match mode {
                    Mode::HashPassword => Vec::new(),
                    Mode::ReusedMemory => vec![Block::new(); blocks],
                };
                let mut out = [0u8; 32];
                while !stop.load(Ordering::Relaxed) {
                    match mode {
                        Mode::HashPassword => {
                            hasher
                                .hash_password(PASSWORD)
                                .map_err(|e| anyhow!("argon2: {e}"))?;
                        }
                        Mode::ReusedMemory => hasher
                            .hash_password_into_with_memory(
                                PASSWORD,
                                SALT,
                                &mut out,
                                &mut memory[..],
                            )
                            .map_err(|e| anyhow!("argon2: {e}"))?,
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow!("hashing thread panicked"))??;
    }
    // Hashes finished after the stop flag count too, so divide by the full elapsed time.
    let elapsed = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    Ok(count.load(Ordering::Relaxed) as f64 / elapsed)
}
