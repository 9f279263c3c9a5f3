//! The command line: `serve`, `user create`, `user import`, `user verify-email`, `keys list`,
//! `keys rotate`, `store copy`, `audit tail`.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use time::format_description::well_known::Rfc3339;

use crate::auth::keys::rollover::KeyState;
use crate::auth::{AuthService, Registration};
use crate::config::{Config, DatabaseUrl, SigningAlg};
use crate::{Server, store};

mod copy_urls;
use copy_urls::{COPY_FROM_VAR, COPY_TO_VAR, UrlSource};

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
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Print the latest audit records, oldest first; with --follow, keep printing new ones.
    Tail {
        /// Keep waiting for new records (Ctrl-C to stop).
        #[arg(long, short = 'f')]
        follow: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// How many of the latest records to print first.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: u32,
        /// Only this user's records.
        #[arg(long)]
        user: Option<uuid::Uuid>,
        /// Only this event (e.g. `login`; repeatable).
        #[arg(long = "event")]
        events: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy users, signing keys, server secrets and live sessions into another store, for
    /// example from `sqlite://latchkey.db` to `mongodb://h1,h2,h3/latchkey?replicaSet=rs0`.
    /// Stop the servers first: what they write meanwhile is not copied. Keep passwords off the
    /// command line: by default the URLs are read from LATCHKEY_COPY_FROM and LATCHKEY_COPY_TO.
    Copy {
        /// The store to read (a LATCHKEY_DATABASE_URL); `-` reads it from standard input.
        #[arg(long, conflicts_with = "from_env")]
        from: Option<String>,
        /// The environment variable holding the store to read (default LATCHKEY_COPY_FROM).
        #[arg(long, value_name = "VAR")]
        from_env: Option<String>,
        /// The store to write, which must be empty unless --force; `-` reads it from standard
        /// input (after the --from line when both are `-`).
        #[arg(long, conflicts_with = "to_env")]
        to: Option<String>,
        /// The environment variable holding the store to write (default LATCHKEY_COPY_TO).
        #[arg(long, value_name = "VAR")]
        to_env: Option<String>,
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
    /// Mark a user's email address verified (as if they had followed a verification link).
    VerifyEmail {
        /// The username.
        username: String,
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
    /// List the signing keys and their state: pending, current, retiring or retired.
    List,
    /// Publish a new signing key now; it signs after LATCHKEY_KEY_PUBLISH_AHEAD, when resource
    /// servers know it. The old key stays published until its tokens have expired.
    Rotate {
        /// A compromised key: the new key signs at once and every other key is withdrawn, so
        /// the tokens they signed are refused (users sign in again).
        #[arg(long)]
        now: bool,
    },
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
                    .register(
                        Registration {
                            username,
                            password,
                            email,
                            roles,
                        },
                        None,
                    )
                    .await?;
                println!(
                    "created user {} ({}) with roles [{}]",
                    user.username,
                    user.id,
                    user.roles.join(", ")
                );
                Ok(())
            }
            Command::User(UserCommand::VerifyEmail { username }) => {
                let auth = unloaded_service(config).await?;
                let user = auth
                    .mark_email_verified(&username)
                    .await
                    .map_err(|e| match e {
                        crate::auth::AuthError::NotFound => {
                            anyhow::anyhow!("no user named `{username}`")
                        }
                        other => other.into(),
                    })?;
                println!(
                    "marked the email of {} ({}) verified: {}",
                    user.username,
                    user.id,
                    user.email.as_deref().unwrap_or("-")
                );
                Ok(())
            }
            Command::User(UserCommand::Import { file, update }) => {
                import_users(&config, &file, update).await
            }
            Command::Keys(KeysCommand::List) => list_keys(config).await,
            Command::Store(StoreCommand::Copy {
                from,
                from_env,
                to,
                to_env,
                force,
            }) => {
                let from = UrlSource::choose(from, from_env, COPY_FROM_VAR);
                let to = UrlSource::choose(to, to_env, COPY_TO_VAR);
                let (from, to) = copy_urls::resolve(&from, &to, &mut std::io::stdin().lock())?;
                copy_store(&from, &to, force).await
            }
            Command::Keys(KeysCommand::Rotate { now }) => rotate_key(config, now).await,
            Command::Audit(AuditCommand::Tail {
                follow,
                json,
                lines,
                user,
                events,
            }) => {
                let query = store::AuditQuery {
                    user_id: user,
                    events,
                    after: None,
                    limit: lines.clamp(1, 1000),
                    newest_first: true,
                };
                audit_tail(config, query, follow, json).await
            }
        }
    }
}

async fn list_keys(config: Config) -> anyhow::Result<()> {
    let auth = unloaded_service(config).await?;
    for key in auth.signing_keys().list().await? {
        let state = match key.state {
            KeyState::Pending => format!(
                "pending   signs from {}",
                key.activates_at.format(&Rfc3339)?
            ),
            KeyState::Current => format!(
                "current   signing since {}",
                key.activates_at.format(&Rfc3339)?
            ),
            KeyState::Retiring { until } => {
                format!("retiring  published until {}", until.format(&Rfc3339)?)
            }
            KeyState::Retired { since } => format!("retired   since {}", since.format(&Rfc3339)?),
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

async fn rotate_key(config: Config, at_once: bool) -> anyhow::Result<()> {
    if config.signing_alg == SigningAlg::HS256 {
        bail!(
            "LATCHKEY_SIGNING_ALG=HS256 uses LATCHKEY_HS256_SECRET; change that secret to rotate"
        );
    }
    let reload = config.key_reload_interval.as_secs();
    let auth = unloaded_service(config).await?;
    let done = auth.signing_keys().rotate(at_once).await?;
    if at_once {
        println!(
            "new signing key {} ({}) signs now; {} old key(s) withdrawn: their tokens are refused. \
             Running servers switch within {reload} s.",
            done.kid, done.alg, done.withdrawn
        );
    } else {
        println!(
            "new signing key {} ({}) published (within {reload} s on running servers); it signs \
             from {}",
            done.kid,
            done.alg,
            done.activates_at
                .replace_millisecond(done.activates_at.millisecond())?
                .format(&Rfc3339)?
        );
    }
    Ok(())
}

async fn audit_tail(
    config: Config,
    mut query: store::AuditQuery,
    follow: bool,
    json: bool,
) -> anyhow::Result<()> {
    for name in &query.events {
        if crate::auth::audit::AuditEvent::parse(name).is_none() {
            bail!("unknown event `{name}`");
        }
    }
    let store = store::open(&config.database_url).await?;
    let print = |record: &store::AuditRecord| -> anyhow::Result<()> {
        let entry = crate::auth::audit::AuditEntry::from(record);
        if json {
            println!("{}", serde_json::to_string(&entry)?);
        } else {
            println!(
                "{}  {:<7}  {:<22}  user={}  actor={}  ip={}  {}",
                entry.at.format(&Rfc3339)?,
                entry.outcome,
                entry.event,
                entry
                    .user_id
                    .map_or_else(|| "-".to_owned(), |u| u.to_string()),
                entry.actor,
                entry.ip.as_deref().unwrap_or("-"),
                entry.details
            );
        }
        Ok(())
    };
    let mut latest = store.list_audit(&query).await?;
    latest.reverse();
    for record in &latest {
        print(record)?;
    }
    if !follow {
        return Ok(());
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    query.newest_first = false;
    query.limit = 500;
    query.after = latest.last().map(|r| r.id);
    loop {
        let found = store.list_audit(&query).await?;
        if found.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        }
        for record in &found {
            print(record)?;
        }
        std::io::stdout().flush()?;
        query.after = found.last().map(|r| r.id);
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
    let now = time::OffsetDateTime::from(latchkey_guard::Clock::now(&latchkey_guard::SystemClock));
    let report = store::copy::copy(&*source, &*target, force, now).await?;
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
        crate::auth::import::import_users(&*store, &*config.clock, input, update, None, &mut errors)
            .await?
    } else {
        let opened = std::fs::File::open(file).with_context(|| format!("opening {file}"))?;
        let size = opened.metadata().map(|m| m.len()).ok();
        let input = std::io::BufReader::with_capacity(1 << 16, opened);
        crate::auth::import::import_users(&*store, &*config.clock, input, update, size, &mut errors)
            .await?
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

/// The service for a command that issues nothing: built from `config` (so with the same
/// verifier settings and clock as the server) without loading or creating keys.
async fn unloaded_service(config: Config) -> anyhow::Result<AuthService> {
    let config = Arc::new(config);
    let store = store::open(&config.database_url).await?;
    Ok(AuthService::unloaded(store, config)?)
}

async fn service(config: Config) -> anyhow::Result<AuthService> {
    let config = Arc::new(config);
    let store = store::open(&config.database_url).await?;
    Ok(AuthService::open(store, config).await?)
}
