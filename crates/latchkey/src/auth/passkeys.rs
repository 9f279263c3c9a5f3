//! Passkeys (WebAuthn) through `webauthn_rp`: registration while signed in, passwordless
//! sign-in with discoverable credentials (empty `allowCredentials`, so conditional UI works),
//! and [`AuthService::verify_assertion_for_user`] for a passkey as a second factor.
//!
//! Ceremony state lives in the store ([`crate::store::PasskeyStore`]) with an expiry, keyed by
//! the SHA-256 of a random ceremony id (`challenge_id`) the client sends back; taking it
//! deletes it, so a ceremony finishes once, on whichever instance.
//!
//! Policies:
//! - Backup flags: any BE/BS is accepted and the stored flags follow what the authenticator
//!   says now (a passkey that becomes synced, or stops being, never locks its user out; see
//!   webauthn-rs#185 and supabase/auth#2732).
//! - Signature counter: refused only when the stored and the new counter are both non-zero and
//!   the new one is lower (a cloned authenticator); an unchanged or zero counter is accepted
//!   (synced passkeys report 0). The stored counter is updated by compare-and-set, so two
//!   concurrent sign-ins from one counter value record once and the other is refused.
//! - User verification is required for registration and sign-in, so a passkey sign-in is
//!   multi-factor: `amr` is `["swk", "mfa"]` for a backup-eligible (synced, software-held)
//!   passkey and `["hwk", "mfa"]` for a device-bound one.

use secrecy::SecretString;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::auth::{AuthenticationVerificationOptions, SignatureCounterEnforcement};
use webauthn_rp::request::register::{
    CredProtect, Nickname, PublicKeyCredentialUserEntity, RegistrationVerificationOptions,
    UserHandle16, Username,
};
use webauthn_rp::request::{
    AsciiDomain, BackupReq, DomainOrigin, ExtensionInfo, PublicKeyCredentialDescriptor, RpId,
};
use webauthn_rp::response::register::{DynamicState, StaticState};
use webauthn_rp::response::{AuthTransports, Backup, CredentialId};
use webauthn_rp::{
    AuthenticatedCredential, DiscoverableAuthentication16, DiscoverableAuthenticationServerState,
    DiscoverableCredentialRequestOptions, PublicKeyCredentialCreationOptions, Registration,
    RegistrationServerState,
};

use super::refresh::hash_token;
use super::{AuthError, AuthService, ClientInfo, Issued, fill_random};
use crate::config::WebauthnConfig;
use crate::store::{CeremonyRecord, PasskeyRecord, StoreError};

/// How long a started ceremony can be finished (the options' `timeout` is the same).
pub const CEREMONY_TTL: time::Duration = time::Duration::minutes(5);
/// The longest passkey name.
pub const MAX_NAME_LEN: usize = 100;

const KIND_REGISTER: &str = "register";
const KIND_LOGIN: &str = "login";
const KIND_MFA: &str = "mfa";

/// Why a passkey operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// Passkeys are off (no relying party configured).
    #[error("passkeys are not configured on this server (set LATCHKEY_WEBAUTHN_RP_ID)")]
    Disabled,
    /// The `challenge_id` is unknown, already used, expired, or of another kind of ceremony.
    #[error("the ceremony is unknown, already finished or expired; start again")]
    UnknownCeremony,
    /// The credential JSON could not be read.
    #[error("the credential is malformed: {0}")]
    Malformed(String),
    /// No passkey with this credential id (or not the user's).
    #[error("this passkey is not registered")]
    UnknownCredential,
    /// The WebAuthn checks failed (challenge, origin, RP id, signature, flags, counter).
    #[error("the passkey response was rejected: {0}")]
    Rejected(String),
    /// The credential is registered already.
    #[error("this passkey is already registered")]
    AlreadyRegistered,
}

impl PasskeyError {
    /// The stable `code` of the problem answer.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "passkeys_disabled",
            Self::UnknownCeremony => "unknown_ceremony",
            Self::Malformed(_) => "invalid_input",
            Self::UnknownCredential => "unknown_passkey",
            Self::Rejected(_) => "passkey_rejected",
            Self::AlreadyRegistered => "passkey_exists",
        }
    }
}

impl From<PasskeyError> for AuthError {
    fn from(e: PasskeyError) -> Self {
        Self::Passkey(e)
    }
}

/// A started ceremony: the id to send back with the result and the options for
/// `navigator.credentials.create()` / `.get()` (the WebAuthn JSON forms, for
/// `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`).
#[derive(Debug)]
pub struct Ceremony {
    /// The ceremony id (a secret; only its hash is stored).
    pub challenge_id: SecretString,
    /// `PublicKeyCredentialCreationOptionsJSON` or `PublicKeyCredentialRequestOptionsJSON`.
    pub options: Value,
    /// When it can no longer be finished.
    pub expires_at: OffsetDateTime,
}

/// A registered passkey as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    /// Public id.
    pub id: Uuid,
    /// The user's name for it.
    pub name: String,
    /// The credential id, base64url.
    pub credential_id: String,
    /// Transports (`internal`, `hybrid`, `usb`, …).
    pub transports: Vec<String>,
    /// Backup eligible (a synced passkey).
    pub backup_eligible: bool,
    /// Backed up now.
    pub backup_state: bool,
    /// The last signature counter.
    pub sign_count: u32,
    /// Registration.
    pub created_at: OffsetDateTime,
    /// Last sign-in.
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<&PasskeyRecord> for PasskeyInfo {
    fn from(p: &PasskeyRecord) -> Self {
        use base64::Engine as _;
        Self {
            id: p.id,
            name: p.name.clone(),
            credential_id: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(&p.credential_id),
            transports: p.transports.clone(),
            backup_eligible: p.backup_eligible,
            backup_state: p.backup_state,
            sign_count: p.sign_count,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// A verified assertion: which passkey of which user, and the `amr` values it proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse {
    /// The user.
    pub user_id: Uuid,
    /// The passkey used.
    pub passkey_id: Uuid,
    /// RFC 8176 methods: `hwk` or `swk`, plus `mfa` when the user was verified.
    pub amr: Vec<&'static str>,
}

/// A passwordless sign-in: what a password login issues, and the `amr` for the tokens.
#[derive(Debug)]
pub struct PasskeyLogin {
    /// Access token, refresh token, user.
    pub issued: Issued,
    /// RFC 8176 methods of this sign-in (for the `amr` claim).
    pub amr: Vec<&'static str>,
}

const TRANSPORTS: [(u8, &str); 6] = [
    (0x1, "ble"),
    (0x2, "hybrid"),
    (0x4, "internal"),
    (0x8, "nfc"),
    (0x10, "smart-card"),
    (0x20, "usb"),
];

fn transport_names(t: AuthTransports) -> Vec<String> {
    let bits = t.encode().unwrap_or_default();
    TRANSPORTS
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect()
}

fn transport_bits(names: &[String]) -> Option<AuthTransports> {
    let bits = TRANSPORTS
        .iter()
        .filter(|(_, name)| names.iter().any(|n| n == name))
        .fold(0u8, |acc, (bit, _)| acc | bit);
    AuthTransports::decode(bits).ok()
}

fn backup_flags(backup: Backup) -> (bool, bool) {
    match backup {
        Backup::NotEligible => (false, false),
        Backup::Eligible => (true, false),
        Backup::Exists => (true, true),
    }
}

fn corrupt(what: &str) -> AuthError {
    AuthError::Store(StoreError::Corrupt(format!(
        "stored passkey {what} is unreadable"
    )))
}

/// The relying party, parsed once per call (cheap: a domain string).
struct Rp {
    id: RpId,
    origins: Vec<String>,
}

impl Rp {
    fn new(config: &WebauthnConfig) -> Result<Self, AuthError> {
        let domain = AsciiDomain::try_from(config.rp_id.clone())
            .map_err(|e| AuthError::Internal(format!("bad WebAuthn RP id: {e}")))?;
        Ok(Self {
            id: RpId::Domain(domain),
            origins: config.origins.clone(),
        })
    }

    fn origins(&self) -> Vec<DomainOrigin<'_, '_>> {
        self.origins
            .iter()
            .filter_map(|o| DomainOrigin::try_from(o.as_str()).ok())
            .collect()
    }
}

impl AuthService {
    fn rp(&self) -> Result<Rp, AuthError> {
        let config = self
            .config
            .webauthn
            .as_ref()
            .ok_or(PasskeyError::Disabled)?;
        Rp::new(config)
    }

    /// Stores a ceremony's server state under a fresh id.
    async fn save_ceremony(
        &self,
        kind: &str,
        user_id: Option<Uuid>,
        state: Vec<u8>,
        options: Value,
    ) -> Result<Ceremony, AuthError> {
        use base64::Engine as _;
        let mut raw = [0u8; 32];
        fill_random(&mut raw)?;
        let challenge_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let expires_at = self.now() + CEREMONY_TTL;
        self.store
            .create_ceremony(&CeremonyRecord {
                id_hash: hash_token(&challenge_id),
                kind: kind.to_owned(),
                user_id,
                state,
                expires_at,
            })
            .await?;
        Ok(Ceremony {
            challenge_id: SecretString::from(challenge_id),
            options,
            expires_at,
        })
    }

    /// Takes (deletes) the ceremony `challenge_id` when it is live and of `kind`.
    async fn take_ceremony(
        &self,
        kind: &str,
        challenge_id: &str,
    ) -> Result<CeremonyRecord, AuthError> {
        if challenge_id.is_empty() || challenge_id.len() > 128 {
            return Err(PasskeyError::UnknownCeremony.into());
        }
        let ceremony = self
            .store
            .take_ceremony(hash_token(challenge_id), self.now())
            .await?
            .ok_or(PasskeyError::UnknownCeremony)?;
        if ceremony.kind != kind {
            return Err(PasskeyError::UnknownCeremony.into());
        }
        Ok(ceremony)
    }

    /// Starts registering a passkey for a signed-in user: creation options for a
    /// discoverable credential with user verification, excluding the user's passkeys.
    ///
    /// # Errors
    /// [`PasskeyError::Disabled`], [`AuthError::NotFound`] for a deleted user, a store failure.
    pub async fn passkey_register_start(&self, user_id: Uuid) -> Result<Ceremony, AuthError> {
        let rp = self.rp()?;
        let user = self.user(user_id).await?;
        let handle = UserHandle16::decode(*user_id.as_bytes()).unwrap_or_else(|e| match e {});
        // The name the authenticator shows; a username WebAuthn's profile refuses (PRECIS) falls
        // back to the user id rather than failing the registration.
        let name = Username::try_from(user.username.as_str())
            .or_else(|_| Username::try_from(user_id.to_string()))
            .map_err(|e| AuthError::Internal(format!("username for WebAuthn: {e}")))?;
        let display = Nickname::try_from(user.username.as_str()).ok();
        let existing = self.store.list_passkeys(user_id).await?;
        let exclude = existing
            .iter()
            .filter_map(|p| {
                let id = CredentialId::<Vec<u8>>::decode(p.credential_id.clone()).ok()?;
                let transports = transport_bits(&p.transports)?;
                Some(PublicKeyCredentialDescriptor { id, transports })
            })
            .collect();
        let entity = PublicKeyCredentialUserEntity {
            name,
            id: &handle,
            display_name: display,
        };
        let mut creation = PublicKeyCredentialCreationOptions::passkey(&rp.id, entity, exclude);
        // Ask for credProtect (user verification required) where the authenticator has it, but
        // do not make the browser refuse authenticators without it
        // (`enforceCredentialProtectionPolicy: false`): many platform authenticators lack it,
        // and user verification is required by these options anyway.
        creation.extensions.cred_protect =
            CredProtect::UserVerificationRequired(ExtensionInfo::AllowDontEnforceValue);
        let (server, client) = creation
            .start_ceremony()
            .map_err(|e| AuthError::Internal(format!("WebAuthn creation options: {e}")))?;
        let options = serde_json::to_value(&client)
            .map_err(|e| AuthError::Internal(format!("WebAuthn options: {e}")))?;
        let state = server
            .encode()
            .map_err(|e| AuthError::Internal(format!("WebAuthn state: {e}")))?;
        self.save_ceremony(KIND_REGISTER, Some(user_id), state, options)
            .await
    }

    /// Finishes a registration started by [`Self::passkey_register_start`] for the same user:
    /// verifies the attestation (challenge, origin, RP id, user verification) and stores the
    /// passkey.
    ///
    /// # Errors
    /// [`PasskeyError`]s for an unknown ceremony, a malformed or rejected credential, one
    /// registered already; [`AuthError::InvalidInput`] for a bad name; a store failure.
    pub async fn passkey_register_finish(
        &self,
        user_id: Uuid,
        challenge_id: &str,
        credential: &[u8],
        name: Option<String>,
    ) -> Result<PasskeyInfo, AuthError> {
        let rp = self.rp()?;
        let name = check_name(name.as_deref().unwrap_or("Passkey"))?;
        let registration = Registration::from_json_relaxed(credential)
            .map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        let ceremony = self.take_ceremony(KIND_REGISTER, challenge_id).await?;
        if ceremony.user_id != Some(user_id) {
            return Err(PasskeyError::UnknownCeremony.into());
        }
        let server = RegistrationServerState::<16>::decode(&ceremony.state)
            .map_err(|_| corrupt("ceremony"))?;
        let origins = rp.origins();
        let options = RegistrationVerificationOptions::<DomainOrigin<'_, '_>, DomainOrigin<'_, '_>> {
            allowed_origins: &origins,
            backup_requirement: BackupReq::None,
            ..RegistrationVerificationOptions::default()
        };
        let registered = server
            .verify(&rp.id, &registration, &options)
            .map_err(|e| {
                tracing::info!(user.id = %user_id, error = %e, "passkey registration refused");
                PasskeyError::Rejected(e.to_string())
            })?;
        let (be, bs) = backup_flags(registered.dynamic_state().backup);
        let now = self.now();
        let record = PasskeyRecord {
            id: Uuid::now_v7(),
            user_id,
            credential_id: registered.id().as_ref().to_vec(),
            public_key: registered
                .static_state()
                .encode()
                .unwrap_or_else(|e| match e {}),
            state: registered
                .dynamic_state()
                .encode()
                .unwrap_or_else(|e| match e {})
                .to_vec(),
            sign_count: registered.dynamic_state().sign_count,
            transports: transport_names(registered.transports()),
            backup_eligible: be,
            backup_state: bs,
            name,
            created_at: now,
            last_used_at: None,
        };
        match self.store.create_passkey(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(PasskeyError::AlreadyRegistered.into()),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(user.id = %user_id, passkey.id = %record.id, "passkey registered");
        Ok(PasskeyInfo::from(&record))
    }

    /// The user's passkeys, oldest first.
    ///
    /// # Errors
    /// A store failure.
    pub async fn passkeys(&self, user_id: Uuid) -> Result<Vec<PasskeyInfo>, AuthError> {
        let list = self.store.list_passkeys(user_id).await?;
        Ok(list.iter().map(PasskeyInfo::from).collect())
    }

    /// Whether the user has a passkey (for the `methods` of a login's second step).
    ///
    /// # Errors
    /// A store failure.
    pub async fn has_passkeys(&self, user_id: Uuid) -> Result<bool, AuthError> {
        Ok(self.config.webauthn.is_some() && !self.store.list_passkeys(user_id).await?.is_empty())
    }

    /// Renames one of the user's passkeys.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a bad name, [`AuthError::NotFound`], a store failure.
    pub async fn rename_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        name: &str,
    ) -> Result<(), AuthError> {
        let name = check_name(name)?;
        if self.store.rename_passkey(user_id, id, &name).await? {
            Ok(())
        } else {
            Err(AuthError::NotFound)
        }
    }

    /// Deletes one of the user's passkeys (the caller checks a recent authentication first).
    ///
    /// # Errors
    /// [`AuthError::NotFound`], a store failure.
    pub async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> Result<(), AuthError> {
        if self.store.delete_passkey(user_id, id).await? {
            tracing::info!(user.id = %user_id, passkey.id = %id, "passkey deleted");
            Ok(())
        } else {
            Err(AuthError::NotFound)
        }
    }

    /// Starts a passwordless sign-in: request options with an empty `allowCredentials` (the
    /// authenticator offers its discoverable credentials; works with `mediation:
    /// "conditional"`).
    ///
    /// Each start stores a ceremony, so starts are rate-limited per client address and
    /// globally (`LATCHKEY_PASSKEY_LOGIN_*`).
    ///
    /// # Errors
    /// [`PasskeyError::Disabled`], [`AuthError::TooManyAttempts`], a store failure.
    pub async fn passkey_login_start(&self, client: &ClientInfo) -> Result<Ceremony, AuthError> {
        let limit = self
            .config
            .webauthn
            .as_ref()
            .ok_or(PasskeyError::Disabled)?
            .login_start;
        self.take_rate("passkey-login", limit, client).await?;
        self.start_assertion(KIND_LOGIN, None).await
    }

    /// Starts a passkey second-factor check for `user_id` (the MFA step of a login): the same
    /// request options, bound to the user.
    ///
    /// # Errors
    /// [`PasskeyError::Disabled`], a store failure.
    pub async fn passkey_mfa_start(&self, user_id: Uuid) -> Result<Ceremony, AuthError> {
        self.start_assertion(KIND_MFA, Some(user_id)).await
    }

    async fn start_assertion(
        &self,
        kind: &str,
        user_id: Option<Uuid>,
    ) -> Result<Ceremony, AuthError> {
        let rp = self.rp()?;
        let (server, client) = DiscoverableCredentialRequestOptions::passkey(&rp.id)
            .start_ceremony()
            .map_err(|e| AuthError::Internal(format!("WebAuthn request options: {e}")))?;
        let options = serde_json::to_value(&client)
            .map_err(|e| AuthError::Internal(format!("WebAuthn options: {e}")))?;
        let state = server
            .encode()
            .map_err(|e| AuthError::Internal(format!("WebAuthn state: {e}")))?;
        self.save_ceremony(kind, user_id, state, options).await
    }

    /// Finishes a passwordless sign-in: verifies the assertion and issues exactly what a
    /// password login issues (access token, refresh family), with the `amr` of the passkey.
    ///
    /// # Errors
    /// [`PasskeyError`]s (unknown ceremony, malformed, unknown credential, rejected),
    /// [`AuthError::InvalidCredentials`] for a disabled user, a store failure.
    pub async fn passkey_login_finish(
        &self,
        challenge_id: &str,
        credential: &[u8],
        client: ClientInfo,
    ) -> Result<PasskeyLogin, AuthError> {
        self.codec()?; // not ready: fail before using up the ceremony
        let used = self
            .verify_assertion(KIND_LOGIN, None, challenge_id, credential)
            .await?;
        let user = self
            .store
            .find_user_by_id(used.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(AuthError::InvalidCredentials)?;
        tracing::info!(user.id = %user.id, passkey.id = %used.passkey_id, client.ip = client.ip.as_deref().unwrap_or("-"), "login with a passkey");
        let issued = self
            .start_family(
                std::sync::Arc::new(user),
                client,
                used.amr.iter().map(|m| (*m).to_owned()).collect(),
                "passkey",
            )
            .await?;
        Ok(PasskeyLogin {
            issued,
            amr: used.amr,
        })
    }

    /// Verifies a passkey assertion as the second factor of `user_id` for the ceremony
    /// `challenge_id` started by [`Self::passkey_mfa_start`] for that user. For the MFA step of
    /// `POST /auth/login/mfa` (`webauthn`). The ceremony is used up whatever the outcome.
    ///
    /// # Errors
    /// [`PasskeyError`]s: unknown ceremony (or another user's), malformed, a passkey that is
    /// not this user's, rejected; a store failure.
    pub async fn verify_assertion_for_user(
        &self,
        user_id: Uuid,
        challenge_id: &str,
        assertion: &[u8],
    ) -> Result<PasskeyUse, AuthError> {
        self.verify_assertion(KIND_MFA, Some(user_id), challenge_id, assertion)
            .await
    }

    /// The shared assertion check: parse, take the ceremony, find the passkey (and its owner),
    /// verify, apply the counter policy, record the use.
    async fn verify_assertion(
        &self,
        kind: &str,
        user_id: Option<Uuid>,
        challenge_id: &str,
        assertion: &[u8],
    ) -> Result<PasskeyUse, AuthError> {
        let rp = self.rp()?;
        let authentication = DiscoverableAuthentication16::from_json_relaxed(assertion)
            .map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        let ceremony = self.take_ceremony(kind, challenge_id).await?;
        if ceremony.user_id != user_id {
            return Err(PasskeyError::UnknownCeremony.into());
        }
        let server = DiscoverableAuthenticationServerState::decode(&ceremony.state)
            .map_err(|_| corrupt("ceremony"))?;
        let passkey = self
            .store
            .find_passkey_by_credential(authentication.raw_id().as_ref())
            .await?
            .ok_or(PasskeyError::UnknownCredential)?;
        let handle =
            UserHandle16::decode(*passkey.user_id.as_bytes()).unwrap_or_else(|e| match e {});
        if authentication.response().user_handle().as_ref() != handle.as_ref()
            || user_id.is_some_and(|u| u != passkey.user_id)
        {
            return Err(PasskeyError::UnknownCredential.into());
        }
        let static_state = StaticState::decode(passkey.public_key.as_slice())
            .map_err(|_| corrupt("public key"))?;
        let stored: [u8; 7] = passkey
            .state
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("state"))?;
        let dynamic = DynamicState::decode(stored).map_err(|_| corrupt("state"))?;
        let credential_id = CredentialId::<&[u8]>::decode(passkey.credential_id.as_slice())
            .map_err(|_| corrupt("credential id"))?;
        let mut cred = AuthenticatedCredential::new(credential_id, &handle, static_state, dynamic)
            .map_err(|_| corrupt("credential"))?;
        let origins = rp.origins();
        let options =
            AuthenticationVerificationOptions::<DomainOrigin<'_, '_>, DomainOrigin<'_, '_>> {
                allowed_origins: &origins,
                // Any backup state is accepted; the stored flags follow (module docs).
                backup_requirement: Some(BackupReq::None),
                update_uv: true,
                // `Update` never fails on the counter; the policy is applied below.
                sig_counter_enforcement: SignatureCounterEnforcement::Update,
                ..AuthenticationVerificationOptions::default()
            };
        server
            .verify(&rp.id, &authentication, &mut cred, &options)
            .map_err(|e| {
                tracing::info!(passkey.id = %passkey.id, error = %e, "passkey assertion refused");
                PasskeyError::Rejected(e.to_string())
            })?;
        let after = cred.dynamic_state();
        // `Update` lowers the stored counter only to a lower non-zero value: that is a
        // regression with both counters non-zero, a sign of a cloned authenticator.
        if after.sign_count < passkey.sign_count {
            tracing::warn!(
                passkey.id = %passkey.id,
                stored = passkey.sign_count,
                received = after.sign_count,
                "passkey signature counter went backwards: refused (cloned authenticator?)"
            );
            return Err(
                PasskeyError::Rejected("the signature counter went backwards".into()).into(),
            );
        }
        let (be, bs) = backup_flags(after.backup);
        if (be, bs) != (passkey.backup_eligible, passkey.backup_state) {
            tracing::info!(
                passkey.id = %passkey.id,
                backup_eligible = be,
                backup_state = bs,
                "passkey backup flags changed: stored flags updated"
            );
        }
        let update = crate::store::PasskeyUse {
            state: after.encode().unwrap_or_else(|e| match e {}).to_vec(),
            sign_count: after.sign_count,
            backup_eligible: be,
            backup_state: bs,
            used_at: self.now(),
        };
        if !self
            .store
            .record_passkey_use(passkey.id, passkey.sign_count, &update)
            .await?
        {
            return Err(PasskeyError::Rejected(
                "the passkey was used concurrently; try again".into(),
            )
            .into());
        }
        // User verification is required by the options, so a verified assertion had UV.
        let mut amr = vec![if be { "swk" } else { "hwk" }];
        if after.user_verified {
            amr.push("mfa");
        }
        Ok(PasskeyUse {
            user_id: passkey.user_id,
            passkey_id: passkey.id,
            amr,
        })
    }
}

fn check_name(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control)
    {
        return Err(AuthError::InvalidInput(format!(
            "name must be 1 to {MAX_NAME_LEN} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_round_trip_through_their_bits() {
        let names = vec!["hybrid".to_owned(), "internal".to_owned()];
        assert_eq!(transport_names(transport_bits(&names).unwrap()), names);
        assert!(transport_names(transport_bits(&["bogus".to_owned()]).unwrap()).is_empty());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("  Laptop ").unwrap(), "Laptop");
        assert!(check_name("").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn backup_flags_read_from_the_library_state() {
        assert_eq!(backup_flags(Backup::NotEligible), (false, false));
        assert_eq!(backup_flags(Backup::Eligible), (true, false));
        assert_eq!(backup_flags(Backup::Exists), (true, true));
    }
}
