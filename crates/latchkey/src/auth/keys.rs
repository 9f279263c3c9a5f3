//! Signing keys: generated on first start and kept in the store (so a restart logs nobody
//! out), rotated by `latchkey keys rotate` (published a publication delay before they sign,
//! see [`rollover`]), published as a JWKS while tokens they signed can still be alive.

mod manage;
pub mod rollover;

pub use manage::{KeyView, SigningKeys};

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::RwLock;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::AuthError;
use crate::config::SigningAlg;
use crate::store::{SigningKeyRecord, Store, StoreError};
use latchkey_guard::{SharedClock, Verifier};
use rollover::{KeyState, key_states};

/// The key that signs new tokens.
struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
}

struct Published {
    /// The published keys that can sign, by `activates_at` (oldest first): the signer is the
    /// last one active at signing time, so a pending key takes over on time without a reload.
    signers: Vec<(OffsetDateTime, Arc<Signer>)>,
    jwks: JwkSet,
    jwks_json: Arc<[u8]>,
}

/// The server's signing keys, reloaded from the store so that a rotation made elsewhere (the
/// CLI, another instance) is picked up. Empty until the first successful [`KeyRing::load`]
/// (the store may be unreachable at start); signing then answers "store unavailable".
pub struct KeyRing {
    alg: SigningAlg,
    hs256_secret: Option<SecretString>,
    publish_for: time::Duration,
    verifier: Arc<Verifier>,
    clock: SharedClock,
    state: RwLock<Option<Arc<Published>>>,
}

/// Makes a new private key for `alg` (not HS256, whose key is configured).
///
/// # Errors
/// [`AuthError::Internal`] when key generation fails.
pub fn generate_key(alg: SigningAlg, now: OffsetDateTime) -> Result<SigningKeyRecord, AuthError> {
    let internal = |e: &dyn std::fmt::Display| AuthError::Internal(format!("key generation: {e}"));
    let der: Vec<u8> = match alg {
        SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
            .map_err(|e| internal(&e))?
            .as_ref()
            .to_vec(),
        SigningAlg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|e| internal(&e))?
                .as_ref()
                .to_vec()
        }
        SigningAlg::RS256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| internal(&e))?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> =
                pair.as_der().map_err(|e| internal(&e))?;
            der.as_ref().to_vec()
        }
        SigningAlg::HS256 => {
            return Err(AuthError::Internal(
                "HS256 keys are configured, not generated".into(),
            ));
        }
    };
    let key = encoding_key(alg.as_str(), &der)?;
    let jwk = Jwk::from_encoding_key(&key, jose_alg(alg)).map_err(|e| internal(&e))?;
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| internal(&e))?;
    Ok(SigningKeyRecord {
        kid,
        alg: alg.as_str().to_owned(),
        private_der: der.into(),
        created_at: now,
        activates_at: now,
        retired_at: None,
        revoked_at: None,
    })
}

fn jose_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::EdDSA => Algorithm::EdDSA,
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::HS256 => Algorithm::HS256,
    }
}

fn parse_alg(name: &str) -> Option<SigningAlg> {
    match name {
        "EdDSA" => Some(SigningAlg::EdDSA),
        "ES256" => Some(SigningAlg::ES256),
        "RS256" => Some(SigningAlg::RS256),
        _ => None,
    }
}

fn encoding_key(alg: &str, der: &[u8]) -> Result<EncodingKey, AuthError> {
    match alg {
        "EdDSA" => Ok(EncodingKey::from_ed_der(der)),
        "ES256" => Ok(EncodingKey::from_ec_der(der)),
        "RS256" => {
            // jsonwebtoken wants PKCS#1 DER for RSA; its PEM reader unwraps PKCS#8.
            let body = base64::engine::general_purpose::STANDARD.encode(der);
            let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
            EncodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|e| AuthError::Internal(format!("RSA key: {e}")))
        }
        other => Err(AuthError::Internal(format!(
            "unknown key algorithm {other}"
        ))),
    }
}

fn public_jwk(record: &SigningKeyRecord) -> Result<(Arc<Signer>, Jwk), AuthError> {
    let alg = parse_alg(&record.alg)
        .ok_or_else(|| AuthError::Internal(format!("unknown key algorithm {}", record.alg)))?;
    let key = encoding_key(&record.alg, record.private_der.expose_secret())?;
    let mut jwk = Jwk::from_encoding_key(&key, jose_alg(alg))
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    jwk.common.key_id = Some(record.kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::from(jose_alg(alg)));
    Ok((
        Arc::new(Signer {
            kid: record.kid.clone(),
            alg: jose_alg(alg),
            key,
        }),
        jwk,
    ))
}

impl KeyRing {
    /// An empty ring for `alg`; [`KeyRing::load`] fills it and installs the public keys in
    /// `verifier`. Key states (pending, current, retiring) are decided at `clock`'s time.
    #[must_use]
    pub fn new(
        alg: SigningAlg,
        hs256_secret: Option<SecretString>,
        publish_for: time::Duration,
        verifier: Arc<Verifier>,
        clock: SharedClock,
    ) -> Self {
        Self {
            alg,
            hs256_secret,
            publish_for,
            verifier,
            clock,
            state: RwLock::new(None),
        }
    }

    /// Loads the keys from `store`, creating the first (or a new one, when the configured
    /// algorithm changed), and installs the public keys in the verifier.
    ///
    /// # Errors
    /// A store failure, or unusable stored keys; the previous keys (if any) stay in use.
    pub async fn load(&self, store: &dyn Store) -> Result<(), AuthError> {
        self.install(store, true).await
    }

    /// Re-reads the keys from the store (after a rotation made elsewhere).
    ///
    /// # Errors
    /// A store failure; the previous keys stay in use.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), AuthError> {
        self.install(store, false).await
    }

    async fn install(&self, store: &dyn Store, create: bool) -> Result<(), AuthError> {
        let published = Self::build(
            store,
            super::now_on(&*self.clock),
            self.alg,
            self.hs256_secret.as_ref(),
            self.publish_for,
            &self.verifier,
            create,
        )
        .await?;
        *self.state.write() = Some(Arc::new(published));
        Ok(())
    }

    /// Whether keys have been loaded.
    #[must_use]
    pub fn is_loaded(&self) -> bool {
        self.state.read().is_some()
    }

    fn published(&self) -> Result<Arc<Published>, AuthError> {
        self.state.read().clone().ok_or_else(|| {
            AuthError::Store(StoreError::Unavailable(
                "signing keys are not loaded yet".into(),
            ))
        })
    }

    async fn build(
        store: &dyn Store,
        now: OffsetDateTime,
        alg: SigningAlg,
        hs256_secret: Option<&SecretString>,
        publish_for: time::Duration,
        verifier: &Verifier,
        create: bool,
    ) -> Result<Published, AuthError> {
        let mut records = store.signing_keys().await?;
        let wanted = alg.as_str();
        // A key that signs now, and one of the configured algorithm that signs now or will:
        // otherwise (first start, a changed algorithm, or only a pending key, as after
        // `keys rotate` on an empty store) a new key that signs at once.
        let states = key_states(&records, now, publish_for);
        let signing_now = states.contains(&KeyState::Current);
        let wanted_ahead = records.iter().zip(&states).any(|(k, state)| {
            k.alg == wanted && matches!(state, KeyState::Current | KeyState::Pending)
        });
        let has_current = signing_now && wanted_ahead;
        if alg != SigningAlg::HS256 && !has_current && create {
            store.add_signing_key(&generate_key(alg, now)?).await?;
            records = store.signing_keys().await?;
        }
        let mut jwks = JwkSet { keys: Vec::new() };
        let mut signers = Vec::new();
        for (record, state) in records.iter().zip(key_states(&records, now, publish_for)) {
            if !state.is_published() {
                continue;
            }
            let (key_signer, jwk) = public_jwk(record)?;
            if matches!(state, KeyState::Current | KeyState::Pending) {
                signers.push((record.activates_at, key_signer));
            }
            jwks.keys.push(jwk);
        }
        signers.sort_by(|a, b| (a.0, &a.1.kid).cmp(&(b.0, &b.1.kid)));
        let hmac = hs256_secret.map(|secret| (Arc::new(hs256_signer(secret)), secret));
        if let Some((signer, _)) = &hmac {
            signers = vec![(OffsetDateTime::UNIX_EPOCH, signer.clone())];
        }
        // Checked before the verifier is touched: a store that lost its keys (or answers
        // nonsense) must not take the keys in use away.
        if !signers.iter().any(|(at, _)| *at <= now) {
            return Err(AuthError::Internal(
                "no current signing key in the store".into(),
            ));
        }
        verifier
            .replace_keys(&jwks)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        if let Some((signer, secret)) = &hmac {
            verifier.add_hmac_key(&signer.kid, secret.expose_secret().as_bytes());
        }
        let jwks_json: Arc<[u8]> = serde_json::to_vec(&jwks)
            .map_err(|e| AuthError::Internal(e.to_string()))?
            .into();
        Ok(Published {
            signers,
            jwks,
            jwks_json,
        })
    }

    /// Signs `claims` as an RFC 9068 access token with the current key.
    ///
    /// # Errors
    /// [`AuthError::Internal`] when signing fails.
    pub fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, AuthError> {
        let signer = self.published()?.signer_at(self.clock.now().into())?;
        let mut header = Header::new(signer.alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(signer.kid.clone());
        jsonwebtoken::encode(&header, claims, &signer.key)
            .map_err(|e| AuthError::Internal(format!("signing: {e}")))
    }

    /// The published key set, serialized (`{"keys":[]}` before the first load).
    #[must_use]
    pub fn jwks_json(&self) -> Arc<[u8]> {
        self.state.read().as_ref().map_or_else(
            || Arc::from(&br#"{"keys":[]}"#[..]),
            |p| p.jwks_json.clone(),
        )
    }

    /// The published key set (empty before the first load).
    #[must_use]
    pub fn jwks(&self) -> JwkSet {
        self.state
            .read()
            .as_ref()
            .map_or_else(|| JwkSet { keys: Vec::new() }, |p| p.jwks.clone())
    }

    /// The current signing key's id, once keys are loaded.
    #[must_use]
    pub fn current_kid(&self) -> Option<String> {
        let published = self.state.read().clone()?;
        published
            .signer_at(self.clock.now().into())
            .ok()
            .map(|s| s.kid.clone())
    }
}

impl Published {
    /// The newest key active at `now`.
    fn signer_at(&self, now: OffsetDateTime) -> Result<Arc<Signer>, AuthError> {
        self.signers
            .iter()
            .rev()
            .find(|(at, _)| *at <= now)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| AuthError::Internal("no current signing key".into()))
    }
}

fn hs256_signer(secret: &SecretString) -> Signer {
    let digest = Sha256::digest(secret.expose_secret().as_bytes());
    let kid = format!(
        "hs256-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..9])
    );
    Signer {
        kid,
        alg: Algorithm::HS256,
        key: EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asymmetric_algorithm_generates_a_publishable_key() {
        for alg in [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256] {
            let record = generate_key(alg, OffsetDateTime::now_utc()).unwrap();
            let (signer, jwk) = public_jwk(&record).unwrap();
            assert_eq!(signer.kid, record.kid);
            assert_eq!(jwk.common.key_id.as_deref(), Some(record.kid.as_str()));
            let shown = format!("{record:?}");
            assert!(!shown.contains("private_der:"), "{shown}");
        }
    }
}
