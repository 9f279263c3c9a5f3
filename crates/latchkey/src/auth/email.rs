//! Email flows: proving the account's address (verification), choosing a new password through
//! a mailed link (reset), and the login rule that may require a verified address.
//!
//! Tokens are 256 random bits, sent once in a link and stored only as their SHA-256; the
//! message that carries one is stored in the outbox in the same store operation as the token
//! ([`MailStore::issue_email_token`]) and sent by the outbox worker, never from the request.
//!
//! A forgotten-password request answers 202 before it looks anything up: the lookup, the token
//! and the message happen in a task after the answer, so the answer's status, body and timing
//! are the same whether the account exists or not (only the throttle, which counts requests
//! per client address whatever they name, runs before the answer).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::audit::{Actor, AuditEvent, Event};
use super::password::{check_new_password, normalize_username};
use super::refresh::hash_token;
use super::{AuthError, AuthService, ClientInfo, Profile, fill_random, to_time};
use crate::mail::templates;
use crate::store::{EmailPurpose, EmailTokenRecord, OutboxMessage, UserRecord};

/// Forgotten-password lookups that may wait to run at once; further requests still get their
/// 202 but send nothing (and are logged), so a flood cannot pile up tasks.
pub const MAX_PENDING_LOOKUPS: usize = 64;
/// Messages one account may be sent per [`PER_ACCOUNT_WINDOW`], whoever asks.
const MAIL_PER_ACCOUNT: u32 = 5;
const PER_ACCOUNT_WINDOW: Duration = Duration::from_secs(3_600);
/// The length of a token as mailed (32 bytes, base64url without padding).
const TOKEN_CHARS: usize = 43;
/// The most accounts one forgotten-password request by email writes to.
const MAX_ACCOUNTS_PER_EMAIL: u32 = 5;

/// A new email token and its hash.
fn mint_token() -> Result<(String, crate::store::TokenHash), AuthError> {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes)?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    Ok((token, hash))
}

/// Whether `token` has the shape of a mailed token (refused early otherwise).
fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AuthService {
    /// Wakes the outbox worker (after a message was enqueued).
    #[must_use]
    pub fn mail_wake(&self) -> Arc<tokio::sync::Notify> {
        self.mail_wake.clone()
    }

    fn email_enabled(&self) -> Result<(), AuthError> {
        if self.config.mail.transport.is_some() {
            Ok(())
        } else {
            Err(AuthError::EmailDisabled)
        }
    }

    /// Refuses a login to an account whose email is not verified, when the configuration
    /// asks for verified addresses (`LATCHKEY_REQUIRE_VERIFIED_EMAIL`). Called only after the
    /// password was found right, so it tells nothing to someone without it.
    pub(super) fn require_verified_email(&self, user: &UserRecord) -> Result<(), AuthError> {
        if self.config.mail.require_verified && !user.email_verified {
            tracing::info!(user.id = %user.id, "login refused: email not verified");
            return Err(AuthError::EmailNotVerified);
        }
        Ok(())
    }

    /// Counts one request to an email route from `client`.
    async fn take_email_rate(&self, client: &ClientInfo) -> Result<(), AuthError> {
        self.take_rate("email", self.config.mail.limit, client)
            .await
    }

    /// Whether `user` may be sent one more message now (at most [`MAIL_PER_ACCOUNT`] an hour).
    async fn take_account_mail(&self, user: Uuid) -> Result<bool, AuthError> {
        let key = format!("mail:user:{user}");
        match self
            .take(&key, MAIL_PER_ACCOUNT, PER_ACCOUNT_WINDOW, self.now())
            .await
        {
            Ok(()) => Ok(true),
            Err(AuthError::TooManyAttempts { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stores a token of `purpose` for `user` and its message, and wakes the worker.
    async fn send_token(&self, user: &UserRecord, purpose: EmailPurpose) -> Result<(), AuthError> {
        let Some(email) = user.email.clone() else {
            return Ok(());
        };
        let (token, hash) = mint_token()?;
        let now = self.now();
        let mail = &self.config.mail;
        let (ttl, rendered) = match purpose {
            EmailPurpose::Verify => {
                let url = templates::link(&mail.public_url, "verify-email", &token);
                (
                    mail.verify_ttl,
                    templates::verification(&user.username, &url, mail.verify_ttl),
                )
            }
            EmailPurpose::Reset => {
                let url = templates::link(&mail.public_url, "reset-password", &token);
                (
                    mail.reset_ttl,
                    templates::password_reset(&user.username, &url, mail.reset_ttl),
                )
            }
        };
        let expires_at = now + to_time(ttl);
        let record = EmailTokenRecord {
            hash,
            purpose,
            user_id: user.id,
            email: email.clone(),
            created_at: now,
            expires_at,
        };
        let message = OutboxMessage::new(
            email,
            rendered.subject,
            rendered.text,
            rendered.html,
            now,
            expires_at,
        );
        self.store.issue_email_token(&record, &message).await?;
        self.mail_wake.notify_one();
        tracing::info!(user.id = %user.id, purpose = purpose.as_str(), mail.id = %message.id, "email token issued");
        Ok(())
    }

    /// Sends the caller a link that verifies their email address. Nothing is sent when the
    /// address is verified already.
    ///
    /// # Errors
    /// [`AuthError::EmailDisabled`], [`AuthError::InvalidInput`] when the account has no
    /// address, [`AuthError::TooManyAttempts`], [`AuthError::NotFound`], or a store failure.
    pub async fn request_email_verification(
        &self,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.email_enabled()?;
        self.take_email_rate(client).await?;
        let user = self
            .store
            .find_user_by_id(user_id)
            .await?
            .ok_or(AuthError::NotFound)?;
        if user.email.is_none() {
            return Err(AuthError::InvalidInput(
                "the account has no email address".into(),
            ));
        }
        if user.email_verified {
            return Ok(());
        }
        if !self.take_account_mail(user.id).await? {
            return Err(AuthError::TooManyAttempts {
                retry_after: PER_ACCOUNT_WINDOW.as_secs(),
            });
        }
        self.send_token(&user, EmailPurpose::Verify).await
    }

    /// Uses a verification token: the account's email becomes verified.
    ///
    /// # Errors
    /// [`AuthError::InvalidEmailToken`] for an unknown, expired or used token (or one sent to
    /// an address the account no longer has), [`AuthError::TooManyAttempts`], or a store
    /// failure.
    pub async fn verify_email(
        &self,
        token: &SecretString,
        client: &ClientInfo,
    ) -> Result<Profile, AuthError> {
        self.take_email_rate(client).await?;
        let token = token.expose_secret();
        if !well_formed(token) {
            return Err(AuthError::InvalidEmailToken);
        }
        let user_id = self
            .store
            .verify_email_with_token(hash_token(token), self.now())
            .await?
            .ok_or(AuthError::InvalidEmailToken)?;
        self.users.remove(&user_id);
        tracing::info!(user.id = %user_id, "email verified");
        // Recorded just after the store's own atomic step (like identity links).
        let actor = Actor::User(user_id);
        self.record(
            Some(client),
            Event::success(AuditEvent::EmailVerified, Some(user_id), actor),
        )
        .await;
        let user = self
            .store
            .find_user_by_id(user_id)
            .await?
            .ok_or(AuthError::InvalidEmailToken)?;
        Ok(Profile::from(&user))
    }

    /// Starts a password reset for the account named by `identifier` (a username, or an email
    /// address when it holds `@`). Answers at once, the same way whether such an account
    /// exists or not; the lookup and the message follow in the background.
    ///
    /// # Errors
    /// [`AuthError::EmailDisabled`], [`AuthError::InvalidInput`] for an empty or overlong
    /// identifier, [`AuthError::TooManyAttempts`] (per client address, whatever it names), or
    /// a store failure of the throttle.
    pub async fn forgot_password(
        self: &Arc<Self>,
        identifier: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.email_enabled()?;
        let identifier = identifier.trim();
        if identifier.is_empty() || identifier.len() > 320 {
            return Err(AuthError::InvalidInput(
                "give a username or an email address (at most 320 bytes)".into(),
            ));
        }
        self.take_email_rate(client).await?;
        let Ok(permit) = self.mail_jobs.clone().try_acquire_owned() else {
            tracing::warn!("too many password-reset lookups at once: this request sends nothing");
            return Ok(());
        };
        let auth = Arc::clone(self);
        let identifier = identifier.to_owned();
        tokio::spawn(async move {
            if let Err(e) = auth.send_reset(&identifier).await {
                tracing::warn!(error = %e, "a password-reset message could not be enqueued");
            }
            drop(permit);
        });
        Ok(())
    }

    /// The background half of [`AuthService::forgot_password`].
    async fn send_reset(&self, identifier: &str) -> Result<(), AuthError> {
        let users = if identifier.contains('@') {
            self.store
                .find_users_by_email(identifier, MAX_ACCOUNTS_PER_EMAIL)
                .await?
        } else {
            match normalize_username(identifier) {
                Ok(name) => self
                    .store
                    .find_user_by_username(&name.key)
                    .await?
                    .into_iter()
                    .collect(),
                Err(_) => Vec::new(),
            }
        };
        for user in users {
            if user.disabled || user.email.is_none() {
                continue;
            }
            if !self.take_account_mail(user.id).await? {
                tracing::info!(user.id = %user.id, "password reset not sent: the account's hourly mail limit is reached");
                continue;
            }
            self.send_token(&user, EmailPurpose::Reset).await?;
        }
        Ok(())
    }

    /// Sets a new password with a reset token: the token is used, and every login and session
    /// of the user ends, in one store operation. A refused new password leaves the token
    /// usable.
    ///
    /// # Errors
    /// [`AuthError::InvalidEmailToken`], [`AuthError::InvalidInput`] for a password the rules
    /// refuse, [`AuthError::TooManyAttempts`], [`AuthError::Overloaded`], or a store failure.
    pub async fn reset_password(
        &self,
        token: &SecretString,
        new_password: SecretString,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.take_email_rate(client).await?;
        let token = token.expose_secret();
        if !well_formed(token) {
            return Err(AuthError::InvalidEmailToken);
        }
        let hash = hash_token(token);
        let record = self
            .store
            .find_email_token(hash, EmailPurpose::Reset, self.now())
            .await?
            .ok_or(AuthError::InvalidEmailToken)?;
        let user = self
            .store
            .find_user_by_id(record.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(AuthError::InvalidEmailToken)?;
        check_new_password(
            new_password.expose_secret(),
            self.config.password_min_length,
            &user.username,
        )?;
        let password_hash = self.passwords.hash(new_password).await?;
        let user_id = self
            .store
            .reset_password_with_token(hash, &password_hash, self.now())
            .await?
            .ok_or(AuthError::InvalidEmailToken)?;
        self.users.remove(&user_id);
        tracing::info!(user.id = %user_id, "password reset by email: every login ended");
        let actor = Actor::User(user_id);
        self.record(
            Some(client),
            Event::success(AuditEvent::PasswordReset, Some(user_id), actor),
        )
        .await;
        Ok(())
    }

    /// Marks the email of the user named `username` verified (the operator's command line).
    ///
    /// # Errors
    /// [`AuthError::NotFound`], [`AuthError::InvalidInput`] when the account has no address,
    /// or a store failure.
    pub async fn mark_email_verified(&self, username: &str) -> Result<Profile, AuthError> {
        let key = normalize_username(username)
            .map_err(|_| AuthError::NotFound)?
            .key;
        let user = self
            .store
            .find_user_by_username(&key)
            .await?
            .ok_or(AuthError::NotFound)?;
        self.set_email_verified(user, true).await
    }

    /// Sets a user's `email_verified`, refusing to verify an account without an address.
    pub(super) async fn set_email_verified(
        &self,
        user: UserRecord,
        verified: bool,
    ) -> Result<Profile, AuthError> {
        if verified && user.email.is_none() {
            return Err(AuthError::InvalidInput(
                "the account has no email address to verify".into(),
            ));
        }
        if !self.store.set_email_verified(user.id, verified).await? {
            return Err(AuthError::NotFound);
        }
        self.users.remove(&user.id);
        Ok(Profile::from(&UserRecord {
            email_verified: verified,
            ..user
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_well_formed_and_distinct() {
        let (a, ha) = mint_token().unwrap();
        let (b, hb) = mint_token().unwrap();
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert!(!well_formed(&a[1..]));
        assert!(!well_formed(&format!("{}=", &a[1..])));
    }
}
