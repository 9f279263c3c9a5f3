//! Proof of a recent authentication for sensitive changes (linking or unlinking a provider,
//! changing the password): a sign-in within `LATCHKEY_REAUTH_MAX_AGE`, or the current password.
//! So a stolen access token cannot plant a lasting way into the account.

use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AuthError, AuthService, to_time};
use crate::store::UserRecord;

impl AuthService {
    /// Checks `password` against the user's, throttled per user like logins (each attempt is
    /// counted before the check).
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] for a wrong password (or a disabled user, or one
    /// without a password), [`AuthError::TooManyAttempts`], or a store failure.
    pub(super) async fn verify_current_password(
        &self,
        user: &UserRecord,
        password: SecretString,
    ) -> Result<(), AuthError> {
        let throttle_key = format!("password:{}", user.id);
        let throttle = self.config.throttle;
        self.take(
            &throttle_key,
            throttle.max_failures_per_account,
            throttle.window,
            self.now(),
        )
        .await?;
        let verified = self
            .passwords
            .verify(password, user.password_hash.clone())
            .await?;
        if !verified.matches || user.disabled || user.password_hash.is_none() {
            tracing::info!(user.id = %user.id, "current password refused");
            return Err(AuthError::InvalidCredentials);
        }
        self.store.throttle_clear(&throttle_key).await?;
        Ok(())
    }

    /// Succeeds when the caller signed in at `auth_time` within `LATCHKEY_REAUTH_MAX_AGE`, or
    /// proves it now with `password`.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`] when neither holds, the errors of a password
    /// check, or a store failure.
    pub async fn require_recent_auth(
        &self,
        user_id: Uuid,
        auth_time: Option<OffsetDateTime>,
        password: Option<SecretString>,
    ) -> Result<(), AuthError> {
        let max_age = self.config.limits.reauth_max_age;
        if let Some(t) = auth_time
            && self.now() - t <= to_time(max_age)
        {
            return Ok(());
        }
        let Some(password) = password else {
            return Err(AuthError::ReauthenticationRequired {
                max_age: max_age.as_secs(),
            });
        };
        let user = self
            .store
            .find_user_by_id(user_id)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        self.verify_current_password(&user, password).await
    }
}
