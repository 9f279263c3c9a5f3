//! The command line: `serve`, `user create`, `user import`, `keys list`, `keys rotate`, `store copy`.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use latchkey_guard::{Verifier, VerifierSettings};
use secrecy::SecretString;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::keys::generate_key;
use crate::auth::{AuthService, Registration};
use crate::config::{Config, DatabaseUrl, SigningAlg};
use crate::{Server, store};

/// Latchkey: authentication and authorization server for web APIs.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Move data between stores.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy users, signing keys, server secrets and live sessions into another store, for
    /// example from `sqlite://latchkey.db` to `mongodb://h1,h2,h3/latchkey?replicaSet=rs0`.
    /// Stop the servers first: what they write meanwhile is not copied.
    Copy {
        /// The store to read (a LATCHKEY_DATABASE_URL).
        #[arg(long)]
        from: String,
        /// The store to write; it must be empty unless --force.
        #[arg(long)]
        to: String,
        /// Copy into a non-empty target: records with the same ids are overwritten.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user, reading the password from standard input.
    Create {
        /// The username.
        #[arg(long)]
        username: String,
        /// A role to grant (repeatable), e.g. `--role admin`.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Optional email address.
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input (required: passwords never go in arguments).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Import users from JSON Lines (`-` for stdin), one
    /// `{"username", "email"?, "roles"?, "created_at"?, "password_hash"? | "passport_local_mongoose"?}`
    /// per line. Exit code 0: all went in; 2: some existed and were skipped; 1: a line failed.
    Import {
        /// The file, or `-` for standard input.
        file: String,
        /// Overwrite existing users with the fields the line gives (default: skip them).
        #[arg(long)]
        update: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List the signing keys and their state.
    List,
    /// Make a new signing key current; old keys stay published until their tokens expire.
    Rotate,
}

impl Cli {
    /// Runs the chosen command with `config`.
    ///
    /// # Errors
    /// Whatever stops the command, for `main` to print.
    pub async fn run(self, config: Config) -> anyhow::Result<()> {
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => Server::start(config).await?.run_until_signal().await,
            Command::User(UserCommand::Create {
                username,
                roles,
                email,
                password_stdin: _,
            }) => {
                let mut password = String::new();
                std::io::stdin()
                    .read_to_string(&mut password)
                    .context("reading the password from stdin")?;
                let password =
                    SecretString::from(password.trim_end_matches(['\r', '\n']).to_owned());
                let auth = service(config).await?;
                let user = auth
                    .register(Registration {
                        username,
                        password,
                        email,
                        roles,
                    })
                    .await?;
                println!(
                    "created user {} ({}) with roles [{}]",
                    user.username,
                    user.id,
                    user.roles.join(", ")
                );
                Ok(())
            }
            Command::User(UserCommand::Import { file, update }) => {
                import_users(&config, &file, update).await
            }
            Command::Keys(KeysCommand::List) => {
                let store = store::open(&config.database_url).await?;
                for key in store.signing_keys().await? {
                    let state = match key.retired_at {
                        None => "current".to_owned(),
                        Some(t) => format!("retired {}", t.format(&Rfc3339)?),
                    };
                    println!(
                        "{}  {:<5}  created {}  {state}",
                        key.kid,
                        key.alg,
                        key.created_at.format(&Rfc3339)?
                    );
                }
                Ok(())
            }
            Command::Store(StoreCommand::Copy { from, to, force }) => {
                copy_store(&DatabaseUrl::new(&from), &DatabaseUrl::new(&to), force).await
            }
            Command::Keys(KeysCommand::Rotate) => {
                if config.signing_alg == SigningAlg::HS256 {
                    bail!(
                        "LATCHKEY_SIGNING_ALG=HS256 uses LATCHKEY_HS256_SECRET; change that secret to rotate"
                    );
                }
                let store = store::open(&config.database_url).await?;
                let key = generate_key(config.signing_alg, OffsetDateTime::now_utc())?;
                store.add_signing_key(&key).await?;
                println!(
                    "new signing key {} ({}); running servers switch to it within {} s",
                    key.kid,
                    key.alg,
                    config.key_reload_interval.as_secs()
                );
                Ok(())
            }
        }
    }
}

async fn copy_store(from: &DatabaseUrl, to: &DatabaseUrl, force: bool) -> anyhow::Result<()> {
    if from.expose() == to.expose() {
        bail!("--from and --to name the same store");
    }
    let source = store::open(from)
        .await
        .with_context(|| format!("opening {from}"))?;
    let target = store::open(to)
        .await
        .with_context(|| format!("opening {to}"))?;
    let report = store::copy::copy(&*source, &*target, force).await?;
    let (c, t) = (report.copied, report.target);
    println!(
        "copied {} users, {} identities, {} refresh families, {} sessions, {} signing keys and {} \
         server secrets from {from} to {to}",
        c.users, c.identities, c.families, c.sessions, c.signing_keys, c.server_secrets
    );
    println!(
        "verified: the target holds {} users, {} identities, {} live refresh families, {} live \
         sessions, {} signing keys and {} server secrets",
        t.users, t.identities, t.families, t.sessions, t.signing_keys, t.server_secrets
    );
    Ok(())
}

async fn import_users(config: &Config, file: &str, update: bool) -> anyhow::Result<()> {
    let store = store::open(&config.database_url).await?;
    let started = std::time::Instant::now();
    let mut errors = std::io::stderr().lock();
    let report = if file == "-" {
        let input = std::io::stdin().lock();
        crate::auth::import::import_users(&*store, input, update, None, &mut errors).await?
    } else {
        let opened = std::fs::File::open(file).with_context(|| format!("opening {file}"))?;
        let size = opened.metadata().map(|m| m.len()).ok();
        let input = std::io::BufReader::with_capacity(1 << 16, opened);
        crate::auth::import::import_users(&*store, input, update, size, &mut errors).await?
    };
    drop(errors);
    let r = report;
    println!(
        "{} created, {} updated, {} skipped (existing), {} failed in {:.1} s",
        r.created,
        r.updated,
        r.skipped,
        r.failed,
        started.elapsed().as_secs_f64()
    );
    match r.exit_code() {
        0 => Ok(()),
        code => std::process::exit(code),
    }
}

async fn service(config: Config) -> anyhow::Result<AuthService> {
    let config = Arc::new(config);
    let store = store::open(&config.database_url).await?;
    let verifier = Arc::new(Verifier::new(VerifierSettings::new(
        config.issuer.clone(),
        config.audience.clone(),
    )));
    Ok(AuthService::new(store, config, verifier).await?)
}
