//! How many Argon2id hashes per second this machine's cores allow with the default OWASP
//! parameters (m = 19456 KiB, t = 2, p = 1): one thread per available core, hashing in a loop
//! for a few seconds. The login-throughput benchmark in `bench/` compares against this figure.
//!
//! `cargo run --release -p latchkey --example argon2_rate [seconds] [threads]`
//!
//! Prints one line `argon2id_hashes_per_sec=<rate> threads=<n> seconds=<s> hashes=<count>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};

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

    // One warm-up hash so that first-touch page faults are not counted.
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(b"warm-up password for the rate test")
        .map_err(|e| anyhow!("argon2: {e}"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count, params) = (Arc::clone(&stop), Arc::clone(&count), params.clone());
            thread::spawn(move || -> anyhow::Result<()> {
                let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                while !stop.load(Ordering::Relaxed) {
                    hasher
                        .hash_password(b"correct horse battery staple 7")
                        .map_err(|e| anyhow!("argon2: {e}"))?;
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
    let hashes = count.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)]
    let rate = hashes as f64 / elapsed;
    println!(
        "argon2id_hashes_per_sec={rate:.1} threads={threads} seconds={elapsed:.2} hashes={hashes}"
    );
    Ok(())
}
