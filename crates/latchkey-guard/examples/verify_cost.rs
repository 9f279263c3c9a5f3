//! What the guard costs per request, on one core: verifying a token already seen (the cached
//! path every request after the first takes) and a token never seen (the EdDSA signature check).
//!
//! `cargo run --release -p latchkey-guard --example verify_cost`

use std::error::Error;
use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use latchkey_guard::jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use latchkey_guard::jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use latchkey_guard::{Verifier, VerifierSettings};
use serde_json::json;

const ISSUER: &str = "https://auth.bench";
// A throwaway Ed25519 key for this measurement only.
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIObljVnu3+xvB8SRkb/1+4Rqr7ei8m4Hw5QVRKC3lZh5\n-----END PRIVATE KEY-----\n";

fn main() -> Result<(), Box<dyn Error>> {
    let key = EncodingKey::from_ed_pem(KEY.as_bytes())?;
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA)?;
    jwk.common.key_id = Some("k".into());
    jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
    let mut settings = VerifierSettings::new(ISSUER, ISSUER);
    settings.cache_capacity = 100_000;
    let verifier = Verifier::new(settings);
    verifier.replace_keys(&JwkSet { keys: vec![jwk] })?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some("k".into());
    let distinct = 5_000;
    let tokens: Vec<String> = (0..distinct)
        .map(|i| {
            let claims = json!({
                "iss": ISSUER, "sub": format!("user-{i}"), "aud": ISSUER, "exp": now + 600,
                "iat": now, "jti": format!("jti-{i}"), "roles": ["reader"], "sid": "s",
            });
            encode(&header, &claims, &key)
        })
        .collect::<Result<_, _>>()?;

    let started = Instant::now();
    for token in &tokens {
        black_box(verifier.verify(token)?);
    }
    let uncached = started.elapsed().as_secs_f64() / f64::from(distinct);

    let rounds = 1_000_000;
    let hot = &tokens[0];
    let started = Instant::now();
    for _ in 0..rounds {
        black_box(verifier.verify(black_box(hot))?);
    }
    let cached = started.elapsed().as_secs_f64() / f64::from(rounds);

    println!(
        "- cached (token seen before): {:.2} µs per call",
        cached * 1e6
    );
    println!(
        "- uncached (EdDSA signature, then cached): {:.1} µs per call",
        uncached * 1e6
    );
    Ok(())
}
