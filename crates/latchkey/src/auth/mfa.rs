//! Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of skew) with
//! single-use recovery codes, and logins that wait for them.
//!
//! - The TOTP secret is sealed (AES-256-GCM, bound to the factor's id) under a server secret
//!   kept in the store; only the sealed bytes are stored, never logged.
//! - A code is accepted once: the store accepts a time step only when it is later than the
//!   factor's last accepted one, in one conditional write, so two instances cannot both accept
//!   a code (RFC 6238 section 5.2).
//! - Every code check is counted per user before it is made (`mfa:{user}`), and a pending
//!   login takes at most `LATCHKEY_MFA_MAX_ATTEMPTS` wrong codes.
//! - A login of an account with a confirmed factor stops after the password: it gets an
//!   `mfa_token` (random, only its hash stored, single use, `LATCHKEY_MFA_TOKEN_TTL`), and
//!   `/auth/login/mfa` completes it as the login it started from would have.
//!
//! Factors are rows of a kind (`totp`, `recovery_code`); a WebAuthn credential will be one
//! more kind and one more entry in [`MfaChallenge::methods`].

use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{Actor, AuditEvent, Event};
use super::refresh::hash_token;
use super::sessions::{CookieSession, CookieSessionCookie};
use super::{AuthError, AuthService, ClientInfo, Issued, to_time};
use crate::store::{
    AuditedChange, FactorRecord, KIND_RECOVERY_CODE, KIND_TOTP, MfaChallengeRecord, UserRecord,
};

/// The server secret that seals TOTP secrets.
pub(super) const MFA_KEY_NAME: &str = "mfa_secret_key_v1";
/// Recovery codes handed out at confirmation.
pub const RECOVERY_CODES: usize = 10;
/// TOTP secret length: 160 bits, as RFC 4226 section 4 recommends.
const TOTP_SECRET_BYTES: usize = 20;
const TOTP_STEP: u64 = 30;

/// Which login started a pending second-factor login: the second step answers like it.
pub const ENDPOINT_TOKEN: &str = "token";
/// `/session/login`.
pub const ENDPOINT_SESSION: &str = "session";

/// A TOTP enrolment to show once: the secret (base32), the `otpauth://` URI and its QR code.
pub struct TotpEnrolment {
    /// The secret in base32, for typing into an app.
    pub secret: SecretString,
    /// The `otpauth://totp/...` URI (holds the secret).
    pub otpauth_uri: SecretString,
    /// The URI as an SVG QR code.
    pub qr_svg: SecretString,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// A login waiting for its second factor.
#[derive(Debug)]
pub struct MfaChallenge {
    /// The `mfa_token` to send to `/auth/login/mfa`.
    pub token: SecretString,
    /// What may complete it: `totp`, `recovery_code` (later `webauthn`).
    pub methods: Vec<&'static str>,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// What a password login came to.
#[derive(Debug)]
pub enum LoginStep<T> {
    /// Logged in.
    Done(T),
    /// The account has a second factor: nothing was issued yet.
    SecondFactor(MfaChallenge),
}

/// The second step's proof.
#[derive(Debug)]
pub enum MfaProof {
    /// A 6-digit TOTP code.
    Totp(SecretString),
    /// A recovery code.
    RecoveryCode(SecretString),
}

/// A second-factor login completed, as the endpoint that started it answers.
#[derive(Debug)]
pub enum Completed {
    /// `/auth/login`: tokens.
    Token(Issued),
    /// `/session/login`: a session and its cookie.
    Session(Box<(CookieSession, CookieSessionCookie)>),
}

/// A factor as the user and the admin API see it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorInfo {
    /// Id.
    pub id: Uuid,
    /// `totp` (recovery codes are summarized in [`MfaStatus`]).
    pub kind: String,
    /// Enrolment time.
    pub created_at: OffsetDateTime,
    /// Confirmation time.
    pub confirmed_at: Option<OffsetDateTime>,
    /// Last successful use.
    pub last_used_at: Option<OffsetDateTime>,
}

/// A user's second factors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MfaStatus {
    /// Whether a login needs a second factor.
    pub enabled: bool,
    /// Confirmed factors (recovery codes apart).
    pub factors: Vec<FactorInfo>,
    /// Unused recovery codes.
    pub recovery_codes_left: usize,
}

/// Seals and opens TOTP secrets.
pub(super) struct SecretSealer {
    key: LessSafeKey,
}

impl SecretSealer {
    pub(super) fn new(key: &[u8]) -> Result<Self, AuthError> {
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map(LessSafeKey::new)
            .map_err(|_| AuthError::Internal("the MFA key must be 32 bytes".into()))?;
        Ok(Self { key })
    }

    fn seal(&self, id: Uuid, secret: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mut nonce = [0u8; NONCE_LEN];
        super::fill_random(&mut nonce)?;
        let mut buffer = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| AuthError::Internal("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        Ok(out)
    }

    fn open(&self, id: Uuid, sealed: &[u8]) -> Result<SecretSlice<u8>, AuthError> {
        let corrupt = || AuthError::Internal("a sealed TOTP secret does not open".into());
        if sealed.len() <= NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| corrupt())?;
        let mut buffer = body.to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| corrupt())?;
        Ok(SecretSlice::from(plain.to_vec()))
    }
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<totp_rs::Totp, AuthError> {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(TOTP_STEP)
        .with_secret(secret)
        .with_issuer(Some(issuer))
        .with_account_name(account.replace(':', "_"))
        .build()
        .map_err(|e| AuthError::Internal(format!("TOTP: {e}")))
}

fn unix(now: OffsetDateTime) -> u64 {
    u64::try_from(now.unix_timestamp()).unwrap_or(0)
}

/// A recovery code: 10 base32 characters in two groups (50 bits), easy to type.
fn recovery_code() -> Result<String, AuthError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 10];
    super::fill_random(&mut bytes)?;
    let chars: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok(format!("{}-{}", &chars[..5], &chars[5..]))
}

/// The stored form of a recovery code: SHA-256 of its normalized text (lowercase, no
/// separators or spaces), so `ABCDE-FGHIJ` and `abcdefghij` are one code.
fn recovery_hash(code: &str) -> [u8; 32] {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(normalized.as_bytes()).into()
}

fn random_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    super::fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl AuthService {
    fn mfa_sealer(&self) -> Result<&SecretSealer, AuthError> {
        Ok(&self.secrets()?.mfa)
    }

    /// The user's confirmed factors of `kind`.
    async fn confirmed(&self, user_id: Uuid, kind: &str) -> Result<Vec<FactorRecord>, AuthError> {
        let mut factors = self.store.list_factors(user_id, Some(kind)).await?;
        factors.retain(|f| f.confirmed_at.is_some());
        Ok(factors)
    }

    /// The user's second factors (never their secrets).
    ///
    /// # Errors
    /// A store failure.
    pub async fn mfa_status(&self, user_id: Uuid) -> Result<MfaStatus, AuthError> {
        let all = self.store.list_factors(user_id, None).await?;
        let factors: Vec<FactorInfo> = all
            .iter()
            .filter(|f| f.kind != KIND_RECOVERY_CODE && f.confirmed_at.is_some())
            .map(|f| FactorInfo {
                id: f.id,
                kind: f.kind.clone(),
                created_at: f.created_at,
                confirmed_at: f.confirmed_at,
                last_used_at: f.last_used_at,
            })
            .collect();
        let recovery_codes_left = all
            .iter()
            .filter(|f| f.kind == KIND_RECOVERY_CODE && f.last_used_at.is_none())
            .count();
        Ok(MfaStatus {
            enabled: !factors.is_empty(),
            factors,
            recovery_codes_left,
        })
    }

    /// Whether a login of the user needs a second factor, from a short-lived in-process cache
    /// (`/auth/me`; changes made on this instance show at once, others' within seconds).
    ///
    /// # Errors
    /// A store failure.
    pub async fn mfa_enabled(&self, user_id: Uuid) -> Result<bool, AuthError> {
        if let Some(enabled) = self.mfa_cache.get(&user_id) {
            return Ok(enabled);
        }
        let enabled = !self.confirmed(user_id, KIND_TOTP).await?.is_empty();
        let until = std::time::Instant::now() + super::USER_CACHE_TTL;
        self.mfa_cache.insert(user_id, enabled, until);
        Ok(enabled)
    }

    /// Starts a TOTP enrolment (a pending factor, replacing an earlier pending one). Needs a
    /// recent sign-in or the password, like other sensitive changes.
    ///
    /// # Errors
    /// [`AuthError::MfaAlreadyEnabled`], the errors of
    /// [`AuthService::require_recent_auth`], or a store failure.
    pub async fn enrol_totp(
        &self,
        user_id: Uuid,
        auth_time: Option<OffsetDateTime>,
        password: Option<SecretString>,
    ) -> Result<TotpEnrolment, AuthError> {
        self.require_recent_auth(user_id, auth_time, password)
            .await?;
        if !self.confirmed(user_id, KIND_TOTP).await?.is_empty() {
            return Err(AuthError::MfaAlreadyEnabled);
        }
        let user = self.user(user_id).await?;
        let mut secret = [0u8; TOTP_SECRET_BYTES];
        super::fill_random(&mut secret)?;
        let generator = totp(&secret, &self.config.mfa.totp_issuer, &user.username)?;
        let uri = generator
            .to_url()
            .map_err(|e| AuthError::Internal(format!("TOTP URI: {e}")))?;
        let qr = qrcode::QrCode::new(uri.as_bytes())
            .map_err(|e| AuthError::Internal(format!("QR code: {e}")))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        let now = self.now();
        let id = Uuid::now_v7();
        let factor = FactorRecord {
            id,
            user_id,
            kind: KIND_TOTP.to_owned(),
            secret: SecretSlice::from(self.mfa_sealer()?.seal(id, &secret)?),
            last_step: 0,
            confirmed_at: None,
            created_at: now,
            last_used_at: None,
        };
        // A new enrolment replaces a pending one in the same step (nothing to record yet).
        let change = AuditedChange::ReplaceFactors {
            user_id,
            kind: KIND_TOTP,
            pending_only: true,
            factors: std::slice::from_ref(&factor),
        };
        self.store.audited(change, &[]).await?;
        tracing::info!(user.id = %user_id, "TOTP enrolment started");
        Ok(TotpEnrolment {
            secret: SecretString::from(totp_rs::Secret::from(&secret[..]).to_base32()),
            otpauth_uri: SecretString::from(uri),
            qr_svg: SecretString::from(qr),
        })
    }

    /// The time step `code` matches for `factor` now, if any.
    fn totp_step(
        &self,
        factor: &FactorRecord,
        code: &str,
        account: &str,
    ) -> Result<Option<i64>, AuthError> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let secret = self
            .mfa_sealer()?
            .open(factor.id, factor.secret.expose_secret())?;
        let generator = totp(
            secret.expose_secret(),
            &self.config.mfa.totp_issuer,
            account,
        )?;
        Ok(generator
            .check(code, unix(self.now()))
            .and_then(|step| i64::try_from(step).ok()))
    }

    /// Counts one second-factor check of `user_id` before it is made.
    async fn take_mfa_attempt(&self, user_id: Uuid) -> Result<String, AuthError> {
        let key = format!("mfa:{user_id}");
        let throttle = self.config.throttle;
        self.take(
            &key,
            throttle.max_failures_per_account,
            throttle.window,
            self.now(),
        )
        .await?;
        Ok(key)
    }

    /// Confirms the pending TOTP factor with a first code; answers the recovery codes, shown
    /// once (only their hashes are kept; earlier ones are replaced).
    ///
    /// # Errors
    /// [`AuthError::MfaNotPending`], [`AuthError::InvalidMfaCode`],
    /// [`AuthError::TooManyAttempts`], or a store failure.
    pub async fn confirm_totp(
        &self,
        user_id: Uuid,
        code: &SecretString,
    ) -> Result<Vec<SecretString>, AuthError> {
        let pending = self
            .store
            .list_factors(user_id, Some(KIND_TOTP))
            .await?
            .into_iter()
            .rfind(|f| f.confirmed_at.is_none())
            .ok_or(AuthError::MfaNotPending)?;
        let throttle_key = self.take_mfa_attempt(user_id).await?;
        let user = self.user(user_id).await?;
        let Some(step) = self.totp_step(&pending, code.expose_secret(), &user.username)? else {
            return Err(AuthError::InvalidMfaCode);
        };
        if !self
            .store
            .confirm_factor(user_id, pending.id, step, self.now())
            .await?
        {
            return Err(AuthError::MfaNotPending);
        }
        self.store.throttle_clear(&throttle_key).await?;
        self.mfa_cache.remove(&user_id);
        tracing::info!(user.id = %user_id, "TOTP enabled");
        let event = Event::success(AuditEvent::MfaEnabled, Some(user_id), Actor::User(user_id))
            .with(serde_json::json!({ "method": KIND_TOTP }));
        self.replace_recovery_codes(user_id, event).await
    }

    /// Replaces the user's recovery codes with new ones, and records `event`, in one step.
    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        event: Event,
    ) -> Result<Vec<SecretString>, AuthError> {
        let now = self.now();
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        let mut records = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            let code = recovery_code()?;
            records.push(FactorRecord {
                id: Uuid::now_v7(),
                user_id,
                kind: KIND_RECOVERY_CODE.to_owned(),
                secret: SecretSlice::from(recovery_hash(&code).to_vec()),
                last_step: 0,
                confirmed_at: Some(now),
                created_at: now,
                last_used_at: None,
            });
            codes.push(SecretString::from(code));
        }
        let change = AuditedChange::ReplaceFactors {
            user_id,
            kind: KIND_RECOVERY_CODE,
            pending_only: false,
            factors: &records,
        };
        self.audited(change, None, event).await?;
        Ok(codes)
    }

    /// Checks a proof against the user's confirmed factors, spending it (a TOTP step is
    /// accepted once, a recovery code used once). Returns the `amr` value it proves.
    async fn check_proof(
        &self,
        user: &UserRecord,
        proof: &MfaProof,
    ) -> Result<&'static str, AuthError> {
        match proof {
            MfaProof::Totp(code) => {
                for factor in self.confirmed(user.id, KIND_TOTP).await? {
                    if let Some(step) =
                        self.totp_step(&factor, code.expose_secret(), &user.username)?
                    {
                        return if self
                            .store
                            .accept_factor_step(factor.id, step, self.now())
                            .await?
                        {
                            Ok("otp")
                        } else {
                            tracing::warn!(user.id = %user.id, "TOTP code replayed");
                            Err(AuthError::InvalidMfaCode)
                        };
                    }
                }
                Err(AuthError::InvalidMfaCode)
            }
            MfaProof::RecoveryCode(code) => {
                let hash = recovery_hash(code.expose_secret());
                if self
                    .store
                    .use_factor_once(user.id, KIND_RECOVERY_CODE, &hash, self.now())
                    .await?
                {
                    tracing::info!(user.id = %user.id, "recovery code used");
                    Ok("otp")
                } else {
                    Err(AuthError::InvalidMfaCode)
                }
            }
        }
    }

    /// Removes TOTP and the recovery codes. Needs the password or a current code (a TOTP code
    /// or a recovery code).
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] without either, [`AuthError::InvalidMfaCode`],
    /// [`AuthError::InvalidCredentials`], [`AuthError::TooManyAttempts`], or a store failure.
    pub async fn remove_totp(
        &self,
        user_id: Uuid,
        password: Option<SecretString>,
        proof: Option<MfaProof>,
    ) -> Result<(), AuthError> {
        self.prove_presence(user_id, password, proof).await?;
        let event = Event::success(AuditEvent::MfaRemoved, Some(user_id), Actor::User(user_id));
        self.audited(AuditedChange::DeleteFactors { user_id }, None, event)
            .await?;
        self.mfa_cache.remove(&user_id);
        tracing::info!(user.id = %user_id, "second factors removed");
        Ok(())
    }

    /// Replaces the recovery codes. Needs the password or a current code.
    ///
    /// # Errors
    /// As [`AuthService::remove_totp`], and [`AuthError::MfaNotPending`] without TOTP.
    pub async fn regenerate_recovery_codes(
        &self,
        user_id: Uuid,
        password: Option<SecretString>,
        proof: Option<MfaProof>,
    ) -> Result<Vec<SecretString>, AuthError> {
        if self.confirmed(user_id, KIND_TOTP).await?.is_empty() {
            return Err(AuthError::MfaNotPending);
        }
        self.prove_presence(user_id, password, proof).await?;
        let event = Event::success(
            AuditEvent::RecoveryCodesRegenerated,
            Some(user_id),
            Actor::User(user_id),
        );
        self.replace_recovery_codes(user_id, event).await
    }

    async fn prove_presence(
        &self,
        user_id: Uuid,
        password: Option<SecretString>,
        proof: Option<MfaProof>,
    ) -> Result<(), AuthError> {
        let user = self.user(user_id).await?;
        match (password, proof) {
            (Some(password), _) => {
                let user = self
                    .store
                    .find_user_by_id(user_id)
                    .await?
                    .ok_or(AuthError::InvalidCredentials)?;
                self.verify_current_password(&user, password).await
            }
            (None, Some(proof)) => {
                let key = self.take_mfa_attempt(user_id).await?;
                self.check_proof(&user, &proof).await?;
                self.store.throttle_clear(&key).await?;
                Ok(())
            }
            (None, None) => Err(AuthError::InvalidInput(
                "send the current `password`, a `totp` code or a `recovery_code`".into(),
            )),
        }
    }

    /// Removes every second factor of a user (the admin API and the CLI, for a locked-out
    /// user). Returns how many factors went.
    ///
    /// # Errors
    /// [`AuthError::NotFound`] for an unknown user, or a store failure.
    pub async fn reset_mfa(&self, user_id: Uuid, actor: Actor) -> Result<u64, AuthError> {
        if self.store.find_user_by_id(user_id).await?.is_none() {
            return Err(AuthError::NotFound);
        }
        let event = Event::success(AuditEvent::MfaReset, Some(user_id), actor);
        let removed = self
            .audited(AuditedChange::DeleteFactors { user_id }, None, event)
            .await?;
        self.mfa_cache.remove(&user_id);
        self.store.throttle_clear(&format!("mfa:{user_id}")).await?;
        tracing::warn!(user.id = %user_id, removed, "second factors reset by an operator");
        Ok(removed)
    }

    /// The id of the user named `name_or_id` (a username, or a user id).
    ///
    /// # Errors
    /// [`AuthError::NotFound`], or a store failure.
    pub async fn user_id_for(&self, name_or_id: &str) -> Result<Uuid, AuthError> {
        if let Ok(id) = Uuid::parse_str(name_or_id)
            && self.store.find_user_by_id(id).await?.is_some()
        {
            return Ok(id);
        }
        let key = super::password::normalize_username(name_or_id)
            .map_err(|_| AuthError::NotFound)?
            .key;
        Ok(self
            .store
            .find_user_by_username(&key)
            .await?
            .ok_or(AuthError::NotFound)?
            .id)
    }

    /// After the password: `None` when the account has no second factor, else a pending login
    /// for `endpoint` (nothing issued).
    pub(super) async fn second_factor_challenge(
        &self,
        user: &UserRecord,
        endpoint: &str,
    ) -> Result<Option<MfaChallenge>, AuthError> {
        let factors = self.store.list_factors(user.id, None).await?;
        if !factors
            .iter()
            .any(|f| f.kind == KIND_TOTP && f.confirmed_at.is_some())
        {
            return Ok(None);
        }
        let mut methods = vec![KIND_TOTP];
        if factors
            .iter()
            .any(|f| f.kind == KIND_RECOVERY_CODE && f.last_used_at.is_none())
        {
            methods.push(KIND_RECOVERY_CODE);
        }
        let token = random_token()?;
        let now = self.now();
        let ttl = self.config.mfa.token_ttl;
        let challenge = MfaChallengeRecord {
            token_hash: hash_token(&token),
            user_id: user.id,
            endpoint: endpoint.to_owned(),
            amr: vec!["pwd".to_owned()],
            created_at: now,
            expires_at: now + to_time(ttl),
        };
        self.store.create_mfa_challenge(&challenge).await?;
        tracing::info!(user.id = %user.id, "password accepted; second factor required");
        Ok(Some(MfaChallenge {
            token: SecretString::from(token),
            methods,
            expires_in: ttl.as_secs(),
        }))
    }

    /// Completes a login waiting for its second factor: checks the proof (counted per user
    /// and per pending login), takes the pending login (once) and logs in as the endpoint that
    /// started it.
    ///
    /// # Errors
    /// [`AuthError::InvalidMfaToken`] (unknown, expired, used, or withdrawn after too many
    /// wrong codes), [`AuthError::InvalidMfaCode`], [`AuthError::TooManyAttempts`], or a
    /// store failure.
    pub async fn complete_mfa_login(
        &self,
        mfa_token: &SecretString,
        proof: MfaProof,
        client: ClientInfo,
    ) -> Result<Completed, AuthError> {
        self.codec()?;
        let token = mfa_token.expose_secret();
        if token.len() > 128 {
            return Err(AuthError::InvalidMfaToken);
        }
        let hash = hash_token(token);
        let now = self.now();
        let challenge = self
            .store
            .find_mfa_challenge(hash, now)
            .await?
            .ok_or(AuthError::InvalidMfaToken)?;
        let user_key = self.take_mfa_attempt(challenge.user_id).await?;
        let token_key = format!("mfa_token:{}", hex::encode(&hash.0[..16]));
        let count = self
            .store
            .throttle_hit(&token_key, now, to_time(self.config.mfa.token_ttl))
            .await?;
        if count.failures > self.config.mfa.max_attempts {
            self.store.take_mfa_challenge(hash, now).await?;
            return Err(AuthError::InvalidMfaToken);
        }
        let user = match self.store.find_user_by_id(challenge.user_id).await? {
            Some(user) if !user.disabled => Arc::new(user),
            _ => return Err(AuthError::InvalidMfaToken),
        };
        let method = self.check_proof(&user, &proof).await?;
        let Some(challenge) = self.store.take_mfa_challenge(hash, now).await? else {
            return Err(AuthError::InvalidMfaToken); // completed concurrently
        };
        self.store.throttle_clear(&user_key).await?;
        self.store.throttle_clear(&token_key).await?;
        let mut amr = challenge.amr;
        amr.push(method.to_owned());
        amr.push("mfa".to_owned());
        tracing::info!(user.id = %user.id, "login completed with a second factor");
        if challenge.endpoint == super::mfa::ENDPOINT_SESSION {
            let started = self.cookie_sessions().start(user, client, amr).await?;
            Ok(Completed::Session(Box::new(started)))
        } else {
            Ok(Completed::Token(
                self.start_family(user, client, amr, "password+totp")
                    .await?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_factor() {
        let sealer = SecretSealer::new(&[7; 32]).unwrap();
        let id = Uuid::now_v7();
        let sealed = sealer.seal(id, b"12345678901234567890").unwrap();
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 20], b"12345678901234567890");
        assert_eq!(
            sealer.open(id, &sealed).unwrap().expose_secret(),
            b"12345678901234567890"
        );
        assert!(sealer.open(Uuid::now_v7(), &sealed).is_err());
    }

    #[test]
    fn recovery_codes_are_normalized_before_hashing() {
        let code = recovery_code().unwrap();
        assert_eq!(code.len(), 11);
        assert_eq!(
            recovery_hash(&code),
            recovery_hash(&code.to_uppercase().replace('-', " "))
        );
        assert_ne!(recovery_hash(&code), recovery_hash("abcde-fghij"));
    }

    #[test]
    fn an_enrolment_does_not_show_its_secret_in_debug() {
        let e = TotpEnrolment {
            secret: SecretString::from("JBSWY3DPEHPK3PXP".to_owned()),
            otpauth_uri: SecretString::from("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".to_owned()),
            qr_svg: SecretString::from(String::new()),
        };
        assert!(!format!("{e:?}").contains("JBSWY3"));
    }
}
