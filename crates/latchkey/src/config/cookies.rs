//! The refresh cookie: `Secure`, `SameSite` and its name (whose prefix rules follow from
//! `Secure` and its path).

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_COOKIE_SECURE",
    "LATCHKEY_COOKIE_SAMESITE",
    "LATCHKEY_REFRESH_COOKIE_NAME",
];

/// The cookie `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Never sent cross-site.
    Strict,
    /// Sent on top-level navigations.
    Lax,
    /// Always sent (requires `Secure`).
    None,
}

impl SameSite {
    /// The attribute value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

pub(super) struct CookieSettings {
    pub cookie_secure: bool,
    pub cookie_same_site: SameSite,
    pub refresh_cookie_name: String,
}

/// Whether `name` holds only the characters every cookie name here may use.
pub(super) fn is_plain_cookie_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<CookieSettings, ConfigError> {
    let cookie_secure = vars.boolean("LATCHKEY_COOKIE_SECURE", true)?;
    let cookie_same_site = match vars
        .get("LATCHKEY_COOKIE_SAMESITE")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("strict") => SameSite::Strict,
        Some("lax") => SameSite::Lax,
        Some("none") if cookie_secure => SameSite::None,
        Some("none") => {
            return Err(err(
                "LATCHKEY_COOKIE_SAMESITE",
                "None requires LATCHKEY_COOKIE_SECURE=true",
            ));
        }
        Some(v) => {
            return Err(err(
                "LATCHKEY_COOKIE_SAMESITE",
                format!("`{v}` is not Strict, Lax or None"),
            ));
        }
    };
    let default_cookie = if cookie_secure {
        "__Secure-refresh_token"
    } else {
        "refresh_token"
    };
    let refresh_cookie_name = vars
        .get("LATCHKEY_REFRESH_COOKIE_NAME")
        .unwrap_or(default_cookie)
        .to_owned();
    if !is_plain_cookie_name(&refresh_cookie_name) {
        return Err(err(
            "LATCHKEY_REFRESH_COOKIE_NAME",
            "may hold only letters, digits, `-`, `_` and `.`",
        ));
    }
    if refresh_cookie_name.starts_with("__Host-") {
        return Err(err(
            "LATCHKEY_REFRESH_COOKIE_NAME",
            "`__Host-` cookies need Path=/, but the refresh cookie uses Path=/auth",
        ));
    }
    if refresh_cookie_name.starts_with("__Secure-") && !cookie_secure {
        return Err(err(
            "LATCHKEY_REFRESH_COOKIE_NAME",
            "`__Secure-` cookies need LATCHKEY_COOKIE_SECURE=true",
        ));
    }
    Ok(CookieSettings {
        cookie_secure,
        cookie_same_site,
        refresh_cookie_name,
    })
}
