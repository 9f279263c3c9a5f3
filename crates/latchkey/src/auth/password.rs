//! Passwords: Argon2id hashing off the async workers with bounded concurrency, equal-time
//! verification for unknown users, and the policy for new passwords (NIST SP 800-63B-4).

use std::sync::{Arc, Mutex, OnceLock, mpsc};

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, PasswordHash, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;

use super::AuthError;
use crate::config::Argon2Settings;

/// The longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The longest username, in characters after NFKC.
pub const MAX_USERNAME_CHARS: usize = 64;

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Whether the password matched.
    pub matches: bool,
    /// Whether the stored hash uses other parameters than the configured ones.
    pub needs_rehash: bool,
}

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on a fixed set of worker threads, at most one hash per
/// thread at a time.
///
/// Dedicated threads rather than tokio's blocking pool: Argon2 allocates its memory (19 MiB
/// by default) per hash, and the allocator keeps freed blocks per thread; a fixed set of
/// threads reuses the same blocks, so memory after a login storm stays near
/// `threads × m_cost` instead of growing with every blocking-pool thread that ever hashed.
/// The async workers never run a hash, so token checks are not stalled by logins.
pub struct PasswordHasherPool {
    params: Params,
    jobs: Mutex<mpsc::Sender<Job>>,
    dummy_hash: Arc<OnceLock<String>>,
}

impl PasswordHasherPool {
    /// A pool for `settings`, with `threads` worker threads.
    ///
    /// # Errors
    /// [`AuthError::Internal`] when the parameters are refused by Argon2 or a thread cannot
    /// be started.
    pub fn new(settings: Argon2Settings, threads: usize) -> Result<Self, AuthError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| AuthError::Internal(format!("argon2 parameters: {e}")))?;
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("latchkey-argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match receiver.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the pool was dropped
                        }
                    }
                })
                .map_err(|e| AuthError::Internal(format!("starting a password thread: {e}")))?;
        }
        let pool = Self {
            params,
            jobs: Mutex::new(sender),
            dummy_hash: Arc::new(OnceLock::new()),
        };
        // The dummy hash (for equal-time answers to unknown users) is made in the background
        // so that start-up does not wait for a full Argon2 run, on a short-lived thread with
        // the crate's allocating path: its memory goes back to the system, so an idle server
        // holds no Argon2 buffer until the first login.
        let (dummy, params) = (pool.dummy_hash.clone(), pool.params.clone());
        std::thread::Builder::new()
            .name("latchkey-argon2-dummy".into())
            .spawn(move || {
                use argon2::PasswordHasher;
                let hashed = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                    .hash_password(DUMMY_PASSWORD)
                    .map(|h| h.to_string());
                if let Ok(hash) = hashed {
                    let _ = dummy.set(hash);
                }
            })
            .map_err(|e| AuthError::Internal(format!("starting a password thread: {e}")))?;
        Ok(pool)
    }

    fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), AuthError> {
        let jobs = self
            .jobs
            .lock()
            .map_err(|_| AuthError::Internal("password pool poisoned".into()))?;
        jobs.send(Box::new(job))
            .map_err(|_| AuthError::Internal("password pool stopped".into()))
    }

    /// Hashes `password` into a PHC string.
    ///
    /// # Errors
    /// [`AuthError::Internal`] when hashing fails.
    pub async fn hash(&self, password: SecretString) -> Result<String, AuthError> {
        let params = self.params.clone();
        self.run(move || hash_with(&params, password.expose_secret().as_bytes()))
            .await?
    }

    /// Checks `password` against `stored`; with no stored hash (unknown user) it checks
    /// against a dummy hash so that the answer takes the same time.
    ///
    /// # Errors
    /// [`AuthError::Internal`] when the worker fails.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, AuthError> {
        let real = stored.is_some();
        let params = self.params.clone();
        let dummy = self.dummy_hash.clone();
        self.run(move || {
            let hash = match stored {
                Some(hash) => hash,
                None => match dummy.get() {
                    Some(hash) => hash.clone(),
                    None => hash_with(&params, DUMMY_PASSWORD).unwrap_or_default(),
                },
            };
            // Imported bcrypt / PBKDF2 hashes: verified as they are, upgraded at this login.
            let legacy =
                super::legacy_hash::verify_legacy(password.expose_secret().as_bytes(), &hash);
            if let Some(matches) = legacy {
                return Verified {
                    matches: matches && real,
                    needs_rehash: true,
                };
            }
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return Verified {
                    matches: false,
                    needs_rehash: false,
                };
            };
            let matches = verify_with_reused_memory(password.expose_secret().as_bytes(), &parsed);
            let needs_rehash = parsed.algorithm.as_str() != "argon2id"
                || Params::try_from(&parsed).map_or(true, |p| {
                    p.m_cost() != params.m_cost()
                        || p.t_cost() != params.t_cost()
                        || p.p_cost() != params.p_cost()
                });
            Verified {
                matches: matches && real,
                needs_rehash,
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        self.submit(move || {
            let _ = done.send(span.in_scope(work));
        })?;
        result
            .await
            .map_err(|_| AuthError::Internal("password worker failed".into()))
    }
}

const DUMMY_PASSWORD: &[u8] = b"latchkey dummy password for unknown users";

thread_local! {
    /// Each hashing thread's Argon2 memory, allocated once and reused by every hash, so memory
    /// stays at `threads × m_cost` however many logins come.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs Argon2 into `out` with this thread's reusable memory.
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        let needed = params.block_count();
        if blocks.len() < needed {
            blocks.resize(needed, Block::default());
        }
        Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
            password,
            salt,
            out,
            &mut blocks[..needed],
        )
    })
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String, AuthError> {
    let internal = |e: &dyn std::fmt::Display| AuthError::Internal(format!("argon2: {e}"));
    let mut salt = [0u8; 16];
    super::fill_random(&mut salt)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params,
        password,
        &salt,
        &mut out,
    )
    .map_err(|e| internal(&e))?;
    let hash = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| internal(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| internal(&e))?),
        hash: Some(Output::new(&out).map_err(|e| internal(&e))?),
    };
    Ok(hash.to_string())
}

/// Recomputes the stored hash's output for `password` and compares in constant time.
fn verify_with_reused_memory(password: &[u8], parsed: &PasswordHash) -> bool {
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(parsed) else {
        return false;
    };
    let mut out = vec![0u8; expected.as_bytes().len()];
    if argon2_into(
        algorithm,
        version,
        &params,
        password,
        salt.as_ref(),
        &mut out,
    )
    .is_err()
    {
        return false;
    }
    bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// A username as displayed (NFKC) and as compared (case-folded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    /// The NFKC form, as registered.
    pub display: String,
    /// The case-insensitive key that uniqueness is checked on.
    pub key: String,
}

/// Normalizes a username: NFKC, 1 to 64 characters, no whitespace or control characters.
///
/// # Errors
/// [`AuthError::InvalidInput`] saying what is wrong.
pub fn normalize_username(raw: &str) -> Result<Username, AuthError> {
    let display: String = raw.nfkc().collect();
    let count = display.chars().count();
    if count == 0 || count > MAX_USERNAME_CHARS {
        return Err(AuthError::InvalidInput(format!(
            "username must be 1 to {MAX_USERNAME_CHARS} characters"
        )));
    }
    if display.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::InvalidInput(
            "username must not contain spaces or control characters".into(),
        ));
    }
    // Case folding after NFKC, then NFKC again: the key is stable under both.
    let key = display.to_lowercase().nfkc().collect();
    Ok(Username { display, key })
}

/// Checks a new password: at least `min_chars` characters, at most 1024 bytes, and not a
/// common, breached or easily guessed one (zxcvbn's dictionaries, scored against the
/// username too).
///
/// # Errors
/// [`AuthError::InvalidInput`] saying what is wrong (never echoing the password).
pub fn check_new_password(
    password: &str,
    min_chars: usize,
    username: &str,
) -> Result<(), AuthError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::InvalidInput(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.chars().count() < min_chars {
        return Err(AuthError::InvalidInput(format!(
            "password must be at least {min_chars} characters"
        )));
    }
    // zxcvbn's cost grows with length; the first 100 characters decide whether it is guessable.
    let head: String = password.chars().take(100).collect();
    let score: u8 = zxcvbn::zxcvbn(&head, &[username]).score().into();
    if score < 3 {
        return Err(AuthError::InvalidInput(
            "password is too common or too easy to guess; a few unrelated words make a good one"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> PasswordHasherPool {
        PasswordHasherPool::new(
            Argon2Settings {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            2,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let pool = pool();
        let hash = pool
            .hash(SecretString::from("correct horse battery staple"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        let ok = pool
            .verify(
                SecretString::from("correct horse battery staple"),
                Some(hash.clone()),
            )
            .await
            .unwrap();
        assert_eq!(
            ok,
            Verified {
                matches: true,
                needs_rehash: false
            }
        );
        let bad = pool
            .verify(SecretString::from("wrong horse battery staple"), Some(hash))
            .await
            .unwrap();
        assert!(!bad.matches);
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_itself_still_verify() {
        use argon2::PasswordHasher;
        let params = Params::new(1024, 1, 1, None).unwrap();
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct horse battery staple")
            .unwrap()
            .to_string();
        let pool = pool();
        let ok = pool
            .verify(
                SecretString::from("correct horse battery staple"),
                Some(stored.clone()),
            )
            .await;
        assert!(ok.unwrap().matches);
        let bad = pool
            .verify(
                SecretString::from("correct horse battery stapler"),
                Some(stored),
            )
            .await;
        assert!(!bad.unwrap().matches);
    }

    #[tokio::test]
    async fn an_unknown_user_never_matches_even_with_the_dummy_password() {
        let pool = pool();
        let v = pool
            .verify(
                SecretString::from("latchkey dummy password for unknown users"),
                None,
            )
            .await
            .unwrap();
        assert!(!v.matches);
    }

    #[tokio::test]
    async fn changed_parameters_ask_for_a_rehash() {
        let old = pool()
            .hash(SecretString::from("correct horse battery staple"))
            .await
            .unwrap();
        let stronger = PasswordHasherPool::new(
            Argon2Settings {
                memory_kib: 2048,
                iterations: 1,
                parallelism: 1,
            },
            1,
        )
        .unwrap();
        let v = stronger
            .verify(
                SecretString::from("correct horse battery staple"),
                Some(old),
            )
            .await
            .unwrap();
        assert_eq!(
            v,
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[test]
    fn usernames_are_nfkc_normalized_and_case_folded() {
        let u = normalize_username("Ｍａｒｙ").unwrap();
        assert_eq!(u.display, "Mary");
        assert_eq!(u.key, "mary");
        assert!(normalize_username("two words").is_err());
        assert!(normalize_username("tab\there").is_err());
        assert!(normalize_username("").is_err());
        assert!(normalize_username(&"x".repeat(65)).is_err());
        assert!(normalize_username(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn weak_or_short_passwords_are_refused() {
        assert!(check_new_password("short", 15, "mary").is_err());
        assert!(check_new_password("passwordpassword", 15, "mary").is_err());
        assert!(check_new_password("aaaaaaaaaaaaaaaaaaaa", 15, "mary").is_err());
        assert!(check_new_password(&"é".repeat(600), 15, "mary").is_err());
        assert!(check_new_password("correct horse battery staple", 15, "mary").is_ok());
    }
}
