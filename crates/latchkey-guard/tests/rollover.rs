//! Key rollover as the guard sees it: the periodic refresh follows the key set's max-age
//! (within bounds), a stream of made-up kids never holds back the periodic refresh nor, for
//! longer than the cooldown, a real new key; and `nbf` is checked with the leeway.

// Test helpers outside `#[test]` functions fail loudly too (clippy.toml covers only the latter).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use latchkey_guard::jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use latchkey_guard::jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use latchkey_guard::{KeyFetchError, KeySource, Verifier, VerifierSettings, VerifyError};
use parking_lot::Mutex;
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.test";
const KEY_A: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIObljVnu3+xvB8SRkb/1+4Rqr7ei8m4Hw5QVRKC3lZh5\n-----END PRIVATE KEY-----\n";
const KEY_B: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIEmqTuF/WW7iWmm+EQPNILFxgikfnsZMdH+XF80qfJlc\n-----END PRIVATE KEY-----\n";

fn private(pem: &str) -> EncodingKey {
    EncodingKey::from_ed_pem(pem.as_bytes()).unwrap()
}

fn jwks(keys: &[(&str, &str)]) -> JwkSet {
    let keys = keys
        .iter()
        .map(|(kid, pem)| {
            let mut jwk = Jwk::from_encoding_key(&private(pem), Algorithm::EdDSA).unwrap();
            jwk.common.key_id = Some((*kid).to_owned());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
            jwk
        })
        .collect();
    JwkSet { keys }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token_with(kid: &str, pem: &str, extra: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    let mut claims = json!({
        "iss": ISSUER, "sub": "user-1", "aud": ISSUER, "exp": now() + 60, "iat": now(),
        "jti": format!("{kid}-{}", now()),
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    encode(&header, &claims, &private(pem)).unwrap()
}

fn token(kid: &str, pem: &str) -> String {
    token_with(kid, pem, &json!({}))
}

/// A key source serving what the test puts in it, with a max-age, counting fetches.
struct Issuer {
    fetches: AtomicUsize,
    keys: Mutex<JwkSet>,
    max_age: Option<Duration>,
}

impl Issuer {
    fn new(keys: JwkSet, max_age: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            fetches: AtomicUsize::new(0),
            keys: Mutex::new(keys),
            max_age,
        })
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeySource for Issuer {
    async fn fetch(&self) -> Result<JwkSet, KeyFetchError> {
        Ok(self.fetch_with_lifetime().await?.0)
    }
    async fn fetch_with_lifetime(&self) -> Result<(JwkSet, Option<Duration>), KeyFetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok((self.keys.lock().clone(), self.max_age))
    }
}

async fn started(issuer: &Arc<Issuer>, cooldown: Duration) -> Arc<Verifier> {
    let verifier = Arc::new(
        Verifier::new(VerifierSettings::new(ISSUER, ISSUER))
            .with_key_source(issuer.clone(), cooldown),
    );
    verifier.refresh_keys().await.unwrap();
    verifier
}

async fn known_within(verifier: &Verifier, kid: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if verifier.knows_kid(kid) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn the_periodic_refresh_follows_the_max_age_within_its_bounds() {
    let issuer = Issuer::new(jwks(&[("a", KEY_A)]), Some(Duration::from_secs(1)));
    let verifier = started(&issuer, Duration::from_secs(60)).await;
    let _task =
        verifier.spawn_key_refresh_within(Duration::from_millis(200), Duration::from_secs(3_600));
    *issuer.keys.lock() = jwks(&[("a", KEY_A), ("b", KEY_B)]);
    let took = known_within(&verifier, "b", Duration::from_secs(3)).await;
    assert!(
        took.is_some(),
        "a 1 s max-age refreshes within about a second, not the 1 h ceiling"
    );

    // max-age=0 (or no-store) is held to the floor, not a busy loop.
    let eager = Issuer::new(jwks(&[("a", KEY_A)]), Some(Duration::ZERO));
    let verifier = started(&eager, Duration::from_secs(60)).await;
    let _task =
        verifier.spawn_key_refresh_within(Duration::from_millis(500), Duration::from_secs(3_600));
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let fetches = eager.fetches();
    assert!(
        (2..=4).contains(&fetches),
        "{fetches} fetches in 1.3 s with a 0.5 s floor"
    );

    // A max-age above the ceiling is cut to the ceiling.
    let lazy = Issuer::new(jwks(&[("a", KEY_A)]), Some(Duration::from_secs(86_400)));
    let verifier = started(&lazy, Duration::from_secs(60)).await;
    let _task =
        verifier.spawn_key_refresh_within(Duration::from_millis(100), Duration::from_millis(400));
    *lazy.keys.lock() = jwks(&[("a", KEY_A), ("b", KEY_B)]);
    assert!(
        known_within(&verifier, "b", Duration::from_secs(2))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn made_up_kids_never_hold_back_the_periodic_refresh() {
    let issuer = Issuer::new(jwks(&[("a", KEY_A)]), Some(Duration::from_secs(1)));
    // A long cooldown: the on-demand refetch is of no help during the test.
    let verifier = started(&issuer, Duration::from_secs(30)).await;
    let _task =
        verifier.spawn_key_refresh_within(Duration::from_millis(200), Duration::from_secs(3_600));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacker = {
        let (verifier, stop) = (verifier.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let junk = token(&format!("junk-{n}"), KEY_B);
                assert_eq!(
                    verifier.authenticate(&junk).await,
                    Err(VerifyError::UnknownKey)
                );
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The issuer publishes a new key: the periodic refresh brings it in despite the stream.
    *issuer.keys.lock() = jwks(&[("a", KEY_A), ("b", KEY_B)]);
    let took = known_within(&verifier, "b", Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    attacker.await.unwrap();
    assert!(took.is_some(), "the periodic refresh ran during the attack");
    verifier.authenticate(&token("b", KEY_B)).await.unwrap();
}

#[tokio::test]
async fn a_new_kid_refused_during_the_cooldown_is_fetched_when_it_ends() {
    // No useful periodic refresh (1 h): only the deferred refetch can bring the key in.
    let issuer = Issuer::new(jwks(&[("a", KEY_A)]), None);
    let verifier = started(&issuer, Duration::from_millis(800)).await;
    let _task =
        verifier.spawn_key_refresh_within(Duration::from_secs(3_600), Duration::from_secs(3_600));
    let before = issuer.fetches();
    // A made-up kid starts the cooldown...
    assert_eq!(
        verifier.authenticate(&token("junk", KEY_B)).await,
        Err(VerifyError::UnknownKey)
    );
    assert_eq!(issuer.fetches(), before + 1);
    // ...during which the real new key is refused once...
    *issuer.keys.lock() = jwks(&[("a", KEY_A), ("b", KEY_B)]);
    assert_eq!(
        verifier.authenticate(&token("b", KEY_B)).await,
        Err(VerifyError::UnknownKey)
    );
    // ...and fetched by itself as soon as the cooldown ends.
    let took = known_within(&verifier, "b", Duration::from_secs(2)).await;
    assert!(took.is_some(), "refetched after the cooldown");
    assert_eq!(
        issuer.fetches(),
        before + 2,
        "one fetch per cooldown, no more"
    );
}

#[tokio::test]
async fn nbf_is_checked_with_the_leeway() {
    let issuer = Issuer::new(jwks(&[("a", KEY_A)]), None);
    let verifier = started(&issuer, Duration::from_secs(10)).await;
    let soon = token_with("a", KEY_A, &json!({ "nbf": now() + 10 }));
    verifier.verify(&soon).unwrap();
    let past = token_with("a", KEY_A, &json!({ "nbf": now() - 10 }));
    verifier.verify(&past).unwrap();
    let later = token_with("a", KEY_A, &json!({ "nbf": now() + 120 }));
    assert_eq!(verifier.verify(&later), Err(VerifyError::NotYetValid));
    let garbled = token_with("a", KEY_A, &json!({ "nbf": "tomorrow" }));
    assert_eq!(verifier.verify(&garbled), Err(VerifyError::Malformed));
}
