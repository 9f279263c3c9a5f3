//! OAuth2 / OpenID Connect sign-in settings: the named upstream providers, the exact
//! `redirect_to` allow-list and the auto-link policy.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{ConfigError, Vars, err};

/// Google's issuer, preset for a provider named `google`.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The scopes asked for when none are configured.
pub const DEFAULT_SCOPES: &str = "openid email profile";

/// One upstream OpenID Connect provider (`LATCHKEY_OAUTH_<NAME>_*`).
#[derive(Clone)]
pub struct OAuthProviderConfig {
    /// The name in URLs (`/auth/oauth/{name}/...`) and in stored identities: lowercase.
    pub name: String,
    /// `_ISSUER`: the issuer URL exactly as the provider announces it (discovery is at
    /// `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// `_CLIENT_ID`.
    pub client_id: String,
    /// `_CLIENT_SECRET` (never shown).
    pub client_secret: SecretString,
    /// `_SCOPES`, space- or comma-separated; always includes `openid`.
    pub scopes: Vec<String>,
    /// `_DISPLAY_NAME`, for sign-in buttons.
    pub display_name: String,
}

impl fmt::Debug for OAuthProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthProviderConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"REDACTED")
            .field("scopes", &self.scopes)
            .field("display_name", &self.display_name)
            .finish()
    }
}

/// All OAuth settings.
#[derive(Debug, Clone, Default)]
pub struct OAuthConfig {
    /// `LATCHKEY_OAUTH_PROVIDERS`, in the order listed.
    pub providers: Vec<OAuthProviderConfig>,
    /// `LATCHKEY_OAUTH_REDIRECT_ALLOWLIST`: the exact URLs `redirect_to` may name.
    pub redirect_allowlist: Vec<String>,
    /// `LATCHKEY_OAUTH_AUTO_LINK_VERIFIED_EMAIL`: link a new identity to the one existing user
    /// with the same email when the provider says the email is verified.
    pub auto_link_verified_email: bool,
}

impl OAuthConfig {
    /// The provider named `name`.
    #[must_use]
    pub fn provider(&self, name: &str) -> Option<&OAuthProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Whether `url` is exactly one of the allowed `redirect_to` targets.
    #[must_use]
    pub fn allows_redirect(&self, url: &str) -> bool {
        self.redirect_allowlist.iter().any(|u| u == url)
    }
}

/// The variables read here, apart from the per-provider `LATCHKEY_OAUTH_<NAME>_*` (see
/// [`is_provider_variable`]).
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_OAUTH_AUTO_LINK_VERIFIED_EMAIL",
    "LATCHKEY_OAUTH_PROVIDERS",
    "LATCHKEY_OAUTH_REDIRECT_ALLOWLIST",
];

/// Reads the OAuth settings from the variables.
pub(super) fn from_vars(vars: &Vars<'_>) -> Result<OAuthConfig, ConfigError> {
    let auto_link = vars.boolean("LATCHKEY_OAUTH_AUTO_LINK_VERIFIED_EMAIL", false)?;
    parse(
        &|k| vars.get(k).map(str::to_owned),
        &|k| vars.list(k),
        auto_link,
    )
}

/// Whether `name` is one of the per-provider variables of a listed provider.
pub(super) fn is_provider_variable(name: &str, providers: &[OAuthProviderConfig]) -> bool {
    providers.iter().any(|p| {
        let prefix = format!("LATCHKEY_OAUTH_{}_", p.name.to_ascii_uppercase());
        name.strip_prefix(&prefix).is_some_and(|rest| {
            matches!(
                rest,
                "ISSUER" | "CLIENT_ID" | "CLIENT_SECRET" | "SCOPES" | "DISPLAY_NAME"
            )
        })
    })
}

fn leak(name: String) -> &'static str {
    // Error values name their variable as `&'static str`; provider variable names are built
    // at start, a handful at most, and only on the error path.
    Box::leak(name.into_boxed_str())
}

/// Reads the OAuth settings through `get` and `list`.
pub(super) fn parse(
    get: &dyn Fn(&str) -> Option<String>,
    list: &dyn Fn(&str) -> Vec<String>,
    auto_link_verified_email: bool,
) -> Result<OAuthConfig, ConfigError> {
    let mut providers: Vec<OAuthProviderConfig> = Vec::new();
    for name in list("LATCHKEY_OAUTH_PROVIDERS") {
        let name = name.to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && name.as_bytes()[0].is_ascii_lowercase();
        if !valid {
            return Err(err(
                "LATCHKEY_OAUTH_PROVIDERS",
                format!(
                    "`{name}` is not a name of letters, digits and `_`, starting with a letter"
                ),
            ));
        }
        if providers.iter().any(|p| p.name == name) {
            return Err(err(
                "LATCHKEY_OAUTH_PROVIDERS",
                format!("`{name}` is listed twice"),
            ));
        }
        providers.push(provider(&name, get)?);
    }
    let mut redirect_allowlist = Vec::new();
    for entry in list("LATCHKEY_OAUTH_REDIRECT_ALLOWLIST") {
        let ok = Url::parse(&entry).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.fragment().is_none() && u.has_host()
        });
        if !ok {
            return Err(err(
                "LATCHKEY_OAUTH_REDIRECT_ALLOWLIST",
                format!("`{entry}` is not an http(s) URL without a fragment"),
            ));
        }
        redirect_allowlist.push(entry);
    }
    if !providers.is_empty() && redirect_allowlist.is_empty() {
        return Err(err(
            "LATCHKEY_OAUTH_REDIRECT_ALLOWLIST",
            "must name at least one URL when LATCHKEY_OAUTH_PROVIDERS is set",
        ));
    }
    Ok(OAuthConfig {
        providers,
        redirect_allowlist,
        auto_link_verified_email,
    })
}

fn provider(
    name: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<OAuthProviderConfig, ConfigError> {
    let upper = name.to_ascii_uppercase();
    let var = |suffix: &str| format!("LATCHKEY_OAUTH_{upper}_{suffix}");
    let google = name == "google";
    let issuer = match get(&var("ISSUER")) {
        Some(v) => v,
        None if google => GOOGLE_ISSUER.to_owned(),
        None => return Err(err(leak(var("ISSUER")), "is required")),
    };
    let issuer_ok = Url::parse(&issuer).is_ok_and(|u| {
        (u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)))
            && u.query().is_none()
            && u.fragment().is_none()
    });
    if !issuer_ok {
        return Err(err(
            leak(var("ISSUER")),
            format!("`{issuer}` must be an https URL (http only on loopback) without query"),
        ));
    }
    let client_id =
        get(&var("CLIENT_ID")).ok_or_else(|| err(leak(var("CLIENT_ID")), "is required"))?;
    let client_secret = get(&var("CLIENT_SECRET"))
        .map(SecretString::from)
        .ok_or_else(|| err(leak(var("CLIENT_SECRET")), "is required"))?;
    if client_secret.expose_secret().chars().any(char::is_control) {
        return Err(err(leak(var("CLIENT_SECRET")), "has control characters"));
    }
    let scopes_text = get(&var("SCOPES")).unwrap_or_else(|| DEFAULT_SCOPES.to_owned());
    let mut scopes: Vec<String> = Vec::new();
    for scope in scopes_text.split([' ', ',']).filter(|s| !s.is_empty()) {
        // RFC 6749 section 3.3: scope tokens are printable ASCII without `"` and `\`.
        if !scope
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(err(
                leak(var("SCOPES")),
                format!("`{scope}` is not a scope"),
            ));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_owned());
    }
    let display_name = get(&var("DISPLAY_NAME")).unwrap_or_else(|| {
        if google {
            "Google".to_owned()
        } else {
            name.to_owned()
        }
    });
    Ok(OAuthProviderConfig {
        name: name.to_owned(),
        issuer,
        client_id,
        client_secret,
        scopes,
        display_name,
    })
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from_map(map: &HashMap<String, String>) -> Result<OAuthConfig, ConfigError> {
        let get = |k: &str| {
            map.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let list = |k: &str| {
            get(k)
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default()
        };
        parse(&get, &list, false)
    }

    fn parse_pairs(pairs: &[(&str, &str)]) -> Result<OAuthConfig, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_map(&map)
    }

    #[test]
    fn google_presets_its_issuer_and_scopes() {
        let c = parse_pairs(&[
            ("LATCHKEY_OAUTH_PROVIDERS", "Google"),
            (
                "LATCHKEY_OAUTH_GOOGLE_CLIENT_ID",
                "id.apps.googleusercontent.com",
            ),
            ("LATCHKEY_OAUTH_GOOGLE_CLIENT_SECRET", "s3cret-value"),
            (
                "LATCHKEY_OAUTH_REDIRECT_ALLOWLIST",
                "https://app.example.com/signed-in",
            ),
        ])
        .unwrap();
        let google = c.provider("google").unwrap();
        assert_eq!(google.issuer, GOOGLE_ISSUER);
        assert_eq!(google.scopes, ["openid", "email", "profile"]);
        assert_eq!(google.display_name, "Google");
        assert!(c.allows_redirect("https://app.example.com/signed-in"));
        assert!(!c.allows_redirect("https://app.example.com/signed-in/"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn any_provider_needs_issuer_id_and_secret_and_always_asks_openid() {
        let base = [
            ("LATCHKEY_OAUTH_PROVIDERS", "corp"),
            (
                "LATCHKEY_OAUTH_REDIRECT_ALLOWLIST",
                "https://app.example.com/",
            ),
            ("LATCHKEY_OAUTH_CORP_ISSUER", "https://id.corp.example"),
            ("LATCHKEY_OAUTH_CORP_CLIENT_ID", "latchkey"),
            ("LATCHKEY_OAUTH_CORP_CLIENT_SECRET", "x"),
            ("LATCHKEY_OAUTH_CORP_SCOPES", "email,groups"),
        ];
        let c = parse_pairs(&base).unwrap();
        assert_eq!(c.providers[0].scopes, ["openid", "email", "groups"]);
        for missing in ["ISSUER", "CLIENT_ID", "CLIENT_SECRET"] {
            let pairs: Vec<_> = base
                .iter()
                .copied()
                .filter(|(k, _)| *k != format!("LATCHKEY_OAUTH_CORP_{missing}"))
                .collect();
            let e = parse_pairs(&pairs).unwrap_err();
            assert_eq!(e.variable, format!("LATCHKEY_OAUTH_CORP_{missing}"));
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("LATCHKEY_OAUTH_PROVIDERS", "9lives")],
                "LATCHKEY_OAUTH_PROVIDERS",
            ),
            (
                &[("LATCHKEY_OAUTH_REDIRECT_ALLOWLIST", "javascript:alert(1)")],
                "LATCHKEY_OAUTH_REDIRECT_ALLOWLIST",
            ),
            (
                &[
                    ("LATCHKEY_OAUTH_PROVIDERS", "corp"),
                    ("LATCHKEY_OAUTH_CORP_ISSUER", "http://id.corp.example"),
                ],
                "LATCHKEY_OAUTH_CORP_ISSUER",
            ),
            (
                &[
                    ("LATCHKEY_OAUTH_PROVIDERS", "google"),
                    ("LATCHKEY_OAUTH_GOOGLE_CLIENT_ID", "a"),
                    ("LATCHKEY_OAUTH_GOOGLE_CLIENT_SECRET", "b"),
                ],
                "LATCHKEY_OAUTH_REDIRECT_ALLOWLIST",
            ),
        ];
        for (pairs, variable) in cases {
            assert_eq!(parse_pairs(pairs).unwrap_err().variable, *variable);
        }
    }

    #[test]
    fn per_provider_variables_are_known() {
        let c = parse_pairs(&[
            ("LATCHKEY_OAUTH_PROVIDERS", "corp"),
            (
                "LATCHKEY_OAUTH_REDIRECT_ALLOWLIST",
                "https://app.example.com/",
            ),
            ("LATCHKEY_OAUTH_CORP_ISSUER", "http://127.0.0.1:9000"),
            ("LATCHKEY_OAUTH_CORP_CLIENT_ID", "latchkey"),
            ("LATCHKEY_OAUTH_CORP_CLIENT_SECRET", "x"),
        ])
        .unwrap();
        assert!(is_provider_variable(
            "LATCHKEY_OAUTH_CORP_SCOPES",
            &c.providers
        ));
        assert!(!is_provider_variable(
            "LATCHKEY_OAUTH_OTHER_SCOPES",
            &c.providers
        ));
    }
}
