//! Throttles whose counters live in the store, so they hold across instances: logins,
//! password changes, registrations and OAuth sign-in starts.
//!
//! Every attempt is counted atomically *before* the work it guards (a password hash, a row),
//! so a burst can never get more than the limit checked at once.
//!
//! The login policy, per window (`LATCHKEY_LOGIN_THROTTLE_WINDOW`, 15 minutes):
//! - `LATCHKEY_LOGIN_MAX_FAILURES_PER_IP` attempts from one address (an IPv6 /64);
//!   successful ones are given back.
//! - `LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT` failures for one account from one address.
//! - The same number of failures for one account from all *unknown* addresses together. An
//!   address is known to an account for 30 days after a successful login from it, and a
//!   browser presenting a live refresh cookie of the account is a known device: neither is
//!   locked out by failures that others cause from elsewhere, so an attacker slows their own
//!   guessing without locking the owner out.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use super::refresh::hash_token;
use super::{AuthError, AuthService, ClientInfo, seconds_until, to_time};
use crate::config::RateLimit;
use crate::store::UserRecord;

/// How long a successful login makes its address known to the account.
const KNOWN_ADDRESS_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The throttling key of a client address: IPv4 as it is, IPv6 by its /64 (one customer's
/// network hands out a whole /64, so keying on the full address would be no limit at all).
#[must_use]
pub fn address_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// The counters a password attempt took, to settle once its outcome is known.
pub(super) struct Attempt {
    address: Option<String>,
    account_here: Option<String>,
    account_elsewhere: Option<String>,
    known: Option<String>,
}

impl AuthService {
    /// Counts one attempt for `key`; refused once the window holds more than `max`.
    ///
    /// # Errors
    /// [`AuthError::TooManyAttempts`] over `max`, or a store failure.
    pub(super) async fn take(
        &self,
        key: &str,
        max: u32,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let count = self.store.throttle_hit(key, now, to_time(window)).await?;
        if count.failures > max {
            tracing::warn!(throttle.key = %key, "throttled");
            return Err(AuthError::TooManyAttempts {
                retry_after: seconds_until(count.window_ends_at, now).max(1),
            });
        }
        Ok(())
    }

    /// Counts one request against a per-address and a global limit named `what`.
    ///
    /// # Errors
    /// [`AuthError::TooManyAttempts`] over either limit, or a store failure.
    pub(crate) async fn take_rate(
        &self,
        what: &str,
        limit: RateLimit,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.now();
        if let Some(ip) = &client.ip {
            let key = format!("{what}:ip:{}", address_key(ip));
            self.take(&key, limit.per_address, limit.window, now)
                .await?;
        }
        self.take(&format!("{what}:all"), limit.global, limit.window, now)
            .await
    }

    /// Whether the client presents a live refresh token of `user` (a known device).
    async fn is_known_device(&self, user: &UserRecord, client: &ClientInfo) -> bool {
        let Some(token) = &client.refresh_token else {
            return false;
        };
        let token = token.expose_secret();
        let Some(parsed) = self.codec().ok().and_then(|c| c.parse(token)) else {
            return false;
        };
        let now = self.now();
        let hash = hash_token(token);
        matches!(
            self.store.find_family(parsed.family_id, now).await,
            Ok(Some(f)) if f.user_id == user.id
                && f.token_expires_at > now
                && (f.current_hash == hash || f.previous_hash == Some(hash))
        )
    }

    /// Counts a password attempt for the account `username_key` before it is checked.
    ///
    /// # Errors
    /// [`AuthError::TooManyAttempts`] when a limit is reached, or a store failure.
    pub(super) async fn begin_password_attempt(
        &self,
        username_key: Option<&str>,
        user: Option<&UserRecord>,
        client: &ClientInfo,
    ) -> Result<Attempt, AuthError> {
        let throttle = self.config.throttle;
        let now = self.now();
        let net = client.ip.as_deref().map(address_key);
        let mut attempt = Attempt {
            address: net.as_ref().map(|n| format!("ip:{n}")),
            account_here: None,
            account_elsewhere: None,
            known: None,
        };
        if let Some(key) = &attempt.address {
            self.take(key, throttle.max_failures_per_ip, throttle.window, now)
                .await?;
        }
        let Some(account) = username_key else {
            return Ok(attempt);
        };
        let here = net.as_deref().unwrap_or("-");
        let known_key = format!("known:{account}|{here}");
        let known = match user {
            Some(user) if self.is_known_device(user, client).await => true,
            _ => net.is_some() && self.store.throttle_get(&known_key, now).await?.is_some(),
        };
        let account_here = format!("user:{account}|{here}");
        self.take(
            &account_here,
            throttle.max_failures_per_account,
            throttle.window,
            now,
        )
        .await?;
        attempt.account_here = Some(account_here);
        if !known {
            let elsewhere = format!("user:{account}");
            self.take(
                &elsewhere,
                throttle.max_failures_per_account,
                throttle.window,
                now,
            )
            .await?;
            attempt.account_elsewhere = Some(elsewhere);
        }
        attempt.known = net.map(|_| known_key);
        Ok(attempt)
    }

    /// Settles a successful attempt: the account's failures are forgotten, the address is
    /// given its count back and becomes known to the account.
    ///
    /// # Errors
    /// A store failure.
    pub(super) async fn succeed_password_attempt(&self, attempt: Attempt) -> Result<(), AuthError> {
        for key in [&attempt.account_here, &attempt.account_elsewhere]
            .into_iter()
            .flatten()
        {
            self.store.throttle_clear(key).await?;
        }
        if let Some(key) = &attempt.address {
            self.store.throttle_release(key).await?;
        }
        if let Some(key) = &attempt.known {
            self.store
                .throttle_hit(key, self.now(), to_time(KNOWN_ADDRESS_TTL))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::address_key;

    #[test]
    fn ipv6_addresses_are_keyed_by_their_64_bit_prefix() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            address_key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            address_key("2001:db8:1:2::9")
        );
        assert_ne!(
            address_key("2001:db8:1:3::1"),
            address_key("2001:db8:1:2::1")
        );
    }

    #[test]
    fn ipv4_and_mapped_ipv4_addresses_are_keyed_whole() {
        assert_eq!(address_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_key("::ffff:192.0.2.7"), "192.0.2.7");
    }
}
