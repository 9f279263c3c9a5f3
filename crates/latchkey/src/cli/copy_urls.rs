//! Where `latchkey store copy` gets its two database URLs, so that passwords need not be on
//! the command line (where `ps` and shell history show them): `--from`/`--to` (`-` reads the
//! URL from standard input), `--from-env VAR`/`--to-env VAR`, or by default the variables
//! `LATCHKEY_COPY_FROM` and `LATCHKEY_COPY_TO`.

use std::io::BufRead;

use anyhow::{Context, bail};

use crate::config::DatabaseUrl;
pub use crate::config::{COPY_FROM_VAR, COPY_TO_VAR};

/// How one URL was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// On the command line.
    Argument(String),
    /// One line of standard input (`-`).
    Stdin,
    /// In the named environment variable.
    Env(String),
}

impl UrlSource {
    /// From the `--x` and `--x-env` options, with `default_var` when neither is given.
    #[must_use]
    pub fn choose(argument: Option<String>, env: Option<String>, default_var: &str) -> Self {
        match (argument, env) {
            (Some(a), _) if a == "-" => Self::Stdin,
            (Some(a), _) => Self::Argument(a),
            (None, Some(var)) => Self::Env(var),
            (None, None) => Self::Env(default_var.to_owned()),
        }
    }
}

/// Resolves both URLs; standard input gives the source first when both read it. Warns on
/// stderr when a URL with a password was given on the command line.
///
/// # Errors
/// A variable that is unset or empty, or standard input without the lines needed.
pub fn resolve(
    from: &UrlSource,
    to: &UrlSource,
    stdin: &mut dyn BufRead,
) -> anyhow::Result<(DatabaseUrl, DatabaseUrl)> {
    let from = resolve_one(from, "--from", stdin)?;
    let to = resolve_one(to, "--to", stdin)?;
    Ok((from, to))
}

fn resolve_one(
    source: &UrlSource,
    option: &str,
    stdin: &mut dyn BufRead,
) -> anyhow::Result<DatabaseUrl> {
    let url = match source {
        UrlSource::Argument(url) => {
            if has_password(url) {
                eprintln!(
                    "latchkey: warning: {option} holds a password, which other users can see in \
                     the process list and which stays in shell history; use {option}-env VAR or \
                     `{option} -` (standard input) instead"
                );
            }
            url.clone()
        }
        UrlSource::Stdin => {
            let mut line = String::new();
            stdin
                .read_line(&mut line)
                .with_context(|| format!("reading the {option} URL from standard input"))?;
            let line = line.trim();
            if line.is_empty() {
                bail!("{option} -: standard input has no URL line for it");
            }
            line.to_owned()
        }
        UrlSource::Env(var) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
            _ => bail!(
                "no {option} store: give {option} URL, {option} - (read from standard input), \
                 {option}-env VAR, or set {var}"
            ),
        },
    };
    Ok(DatabaseUrl::new(&url))
}

/// Whether the URL's authority carries `user:password@` (works for multi-host MongoDB URLs,
/// which a URL parser refuses).
#[must_use]
pub fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_in_single_and_multi_host_urls() {
        assert!(has_password(
            "mongodb://u:secret@h1,h2,h3/db?replicaSet=rs0"
        ));
        assert!(has_password("mongodb+srv://u:p%40ss@cluster.example/db"));
        assert!(!has_password("mongodb://u@h1/db"));
        assert!(!has_password("mongodb://h1:27017/db"));
        assert!(!has_password("sqlite://latchkey.db"));
        assert!(!has_password("sqlite:///srv/a:b@c/latchkey.db?mode=rwc"));
    }

    #[test]
    fn standard_input_gives_the_source_then_the_target() {
        let mut input = &b"mongodb://u:p@h/a\n  sqlite://b.db  \n"[..];
        let (from, to) = resolve(&UrlSource::Stdin, &UrlSource::Stdin, &mut input).unwrap();
        assert_eq!(
            (from.expose(), to.expose()),
            ("mongodb://u:p@h/a", "sqlite://b.db")
        );
        let mut empty = &b""[..];
        assert!(resolve(&UrlSource::Stdin, &UrlSource::Stdin, &mut empty).is_err());
    }

    #[test]
    fn an_unset_variable_is_an_error_naming_the_options() {
        let source = UrlSource::choose(None, None, "LATCHKEY_TEST_SURELY_UNSET_VAR");
        let error = resolve_one(&source, "--from", &mut &b""[..]).unwrap_err();
        assert!(error.to_string().contains("--from-env"), "{error}");
    }
}
