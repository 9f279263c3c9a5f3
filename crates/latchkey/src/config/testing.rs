//! The configuration the test harnesses start servers with: fast hashing, plain-HTTP cookies,
//! a fixed issuer and a port the system picks.

use std::collections::HashMap;

use super::{Config, ConfigError};

/// The issuer (`iss`) of a test server: only the claim and the server's own origin for the
/// CSRF check; requests go to the address the server reports.
pub const TEST_ISSUER: &str = "http://latchkey.test";

impl Config {
    /// The test defaults as variables, for harnesses that add overrides, keep the map for a
    /// restart and build with [`Config::from_env_map`]:
    /// `LATCHKEY_LISTEN=127.0.0.1:0`, `LATCHKEY_DATABASE_URL=database_url`,
    /// `LATCHKEY_ISSUER=http://latchkey.test`, `LATCHKEY_COOKIE_SECURE=false` (so the cookie
    /// names are `refresh_token` and `session`), `LATCHKEY_ARGON2_MEMORY_KIB=1024` and
    /// `LATCHKEY_ARGON2_ITERATIONS=1`; everything else keeps its production default.
    #[doc(hidden)]
    #[must_use]
    pub fn test_vars(database_url: &str) -> HashMap<String, String> {
        [
            ("LATCHKEY_LISTEN", "127.0.0.1:0"),
            ("LATCHKEY_DATABASE_URL", database_url),
            ("LATCHKEY_ISSUER", TEST_ISSUER),
            ("LATCHKEY_COOKIE_SECURE", "false"),
            ("LATCHKEY_ARGON2_MEMORY_KIB", "1024"),
            ("LATCHKEY_ARGON2_ITERATIONS", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The configuration of a test server on `database_url` (see [`Config::test_vars`]). The
    /// clock is the system clock; a test that moves time replaces `clock` with a
    /// [`latchkey_guard::TestClock`].
    ///
    /// # Errors
    /// `LATCHKEY_DATABASE_URL` when `database_url` names no store this build supports.
    #[doc(hidden)]
    pub fn for_tests(database_url: &str) -> Result<Self, ConfigError> {
        Self::for_tests_with(database_url, &[])
    }

    /// [`Config::for_tests`] with `overrides` (`LATCHKEY_*` name, value) on top of the test
    /// defaults.
    ///
    /// # Errors
    /// The first override (or database URL) that cannot be accepted, naming its variable.
    #[doc(hidden)]
    pub fn for_tests_with(
        database_url: &str,
        overrides: &[(&str, &str)],
    ) -> Result<Self, ConfigError> {
        let mut vars = Self::test_vars(database_url);
        for (name, value) in overrides {
            vars.insert((*name).to_owned(), (*value).to_owned());
        }
        Self::from_env_map(&vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Argon2Settings;

    #[test]
    fn the_test_defaults_are_those_the_harnesses_used() {
        let c = Config::for_tests("sqlite:///tmp/latchkey-test.db").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:0");
        assert_eq!(c.database_url.expose(), "sqlite:///tmp/latchkey-test.db");
        assert_eq!(c.issuer, TEST_ISSUER);
        assert_eq!(c.audience, TEST_ISSUER);
        assert!(!c.cookie_secure);
        assert_eq!(c.refresh_cookie_name, "refresh_token");
        assert_eq!(c.session_cookie_name, "session");
        assert_eq!(
            c.argon2,
            Argon2Settings {
                memory_kib: 1_024,
                iterations: 1,
                parallelism: 1
            }
        );
        assert!(c.unknown_variables.is_empty());
    }

    #[test]
    fn overrides_win_over_the_test_defaults_and_are_validated() {
        let c = Config::for_tests_with(
            "sqlite://x.db",
            &[
                ("LATCHKEY_SESSION_STORE", "cookie"),
                ("LATCHKEY_COOKIE_SECURE", "true"),
            ],
        )
        .unwrap();
        assert_eq!(c.session_store, crate::config::SessionStoreKind::Cookie);
        assert!(c.cookie_secure);
        let e = Config::for_tests_with("sqlite://x.db", &[("LATCHKEY_SIGNING_ALG", "none")])
            .unwrap_err();
        assert_eq!(e.variable, "LATCHKEY_SIGNING_ALG");
        assert_eq!(
            Config::for_tests("redis://x").unwrap_err().variable,
            "LATCHKEY_DATABASE_URL"
        );
    }
}
