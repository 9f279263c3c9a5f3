//! Passwords: Argon2id hashing off the async workers with bounded concurrency, equal-time
//! verification for unknown users, and the policy for new passwords (NIST SP 800-63B-4).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use std::cell::RefCell;

use parking_lot::{Condvar, Mutex};

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

/// Which queue a hashing job waits in. Workers always take [`Priority::Login`] jobs first, so
/// a flood of registrations cannot delay people signing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Checking a password of an existing account (login, password change).
    Login,
    /// Hashing a new password (registration, a password change's new hash, a rehash).
    Registration,
}

/// The default number of login jobs that may wait for a hashing thread.
pub const DEFAULT_QUEUE: usize = 32;

struct Queues {
    login: VecDeque<Job>,
    registration: VecDeque<Job>,
    /// Registration jobs being hashed now.
    registrations_running: usize,
    stopped: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    /// Most login jobs waiting at once.
    login_capacity: AtomicUsize,
    /// Most registration jobs waiting at once.
    registration_capacity: AtomicUsize,
    /// Jobs being hashed right now.
    running: AtomicUsize,
    /// At most this many threads hash registrations at once (half of them, at least one), so
    /// a registration flood always leaves threads, and cores, free for logins.
    registration_threads: usize,
    /// Told how long each hash took (the metrics' histogram), when set.
    observer: OnceLock<DurationObserver>,
}

/// Receives the priority and duration of every hash computed (see
/// [`PasswordHasherPool::observe_durations`]).
pub type DurationObserver = Box<dyn Fn(Priority, std::time::Duration) + Send + Sync>;

impl Shared {
    /// The next job and its priority: a login when one waits, else a registration when fewer
    /// than `registration_threads` are being hashed.
    fn next_job(&self) -> Option<(Job, Priority)> {
        let mut queues = self.queues.lock();
        loop {
            if let Some(job) = queues.login.pop_front() {
                return Some((job, Priority::Login));
            }
            if queues.registrations_running < self.registration_threads
                && let Some(job) = queues.registration.pop_front()
            {
                queues.registrations_running += 1;
                return Some((job, Priority::Registration));
            }
            if queues.stopped {
                return None;
            }
            self.ready.wait(&mut queues);
        }
    }

    fn finish(&self, priority: Priority) {
        if priority == Priority::Registration {
            self.queues.lock().registrations_running -= 1;
            // A worker may be waiting for a registration slot.
            self.ready.notify_one();
        }
    }
}

/// Hashes and verifies passwords on a fixed set of worker threads, at most one hash per
/// thread at a time, from two bounded queues.
///
/// Dedicated threads rather than tokio's blocking pool: Argon2 allocates its memory (19 MiB
/// by default) per hash, and the allocator keeps freed blocks per thread; a fixed set of
/// threads reuses the same blocks, so memory after a login storm stays near
/// `threads × m_cost` instead of growing with every blocking-pool thread that ever hashed.
/// The async workers never run a hash, so token checks are not stalled by logins. At most half
/// of the threads (at least one) hash registrations at any time.
///
/// Overload is answered at once, never queued without bound: when a queue is full,
/// [`AuthError::Overloaded`] comes back before anything is hashed. A job whose caller has gone
/// (the client disconnected, the request was dropped) is skipped when a worker reaches it.
pub struct PasswordHasherPool {
    params: Params,
    shared: Arc<Shared>,
    dummy_hash: Arc<OnceLock<String>>,
}

impl Drop for PasswordHasherPool {
    fn drop(&mut self) {
        self.shared.queues.lock().stopped = true;
        self.shared.ready.notify_all();
    }
}

impl PasswordHasherPool {
    /// A pool for `settings`, with `threads` worker threads and [`DEFAULT_QUEUE`] places for
    /// waiting logins (see [`PasswordHasherPool::set_queue_capacity`]).
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
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues {
                login: VecDeque::new(),
                registration: VecDeque::new(),
                registrations_running: 0,
                stopped: false,
            }),
            ready: Condvar::new(),
            login_capacity: AtomicUsize::new(0),
            registration_capacity: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            registration_threads: (threads / 2).max(1),
            observer: OnceLock::new(),
        });
        for i in 0..threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("latchkey-argon2-{i}"))
                .spawn(move || {
                    while let Some((job, priority)) = shared.next_job() {
                        shared.running.fetch_add(1, Ordering::Relaxed);
                        job();
                        shared.running.fetch_sub(1, Ordering::Relaxed);
                        shared.finish(priority);
                    }
                })
                .map_err(|e| AuthError::Internal(format!("starting a password thread: {e}")))?;
        }
        let pool = Self {
            params,
            shared,
            dummy_hash: Arc::new(OnceLock::new()),
        };
        pool.set_queue_capacity(DEFAULT_QUEUE);
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

    /// Sets how many login jobs may wait (at least 1); registrations get a quarter of that
    /// (at least 1), so they can never fill the places logins need.
    pub fn set_queue_capacity(&self, login_jobs: usize) {
        let login_jobs = login_jobs.max(1);
        self.shared
            .login_capacity
            .store(login_jobs, Ordering::Relaxed);
        self.shared
            .registration_capacity
            .store((login_jobs / 4).max(1), Ordering::Relaxed);
    }

    /// Calls `observer` with the priority and duration of every hash computed from now on (once
    /// per pool: a second observer is ignored).
    pub fn observe_durations(&self, observer: DurationObserver) {
        let _ = self.shared.observer.set(observer);
    }

    /// How many jobs wait (logins, registrations) and how many are being hashed.
    #[must_use]
    pub fn load(&self) -> (usize, usize, usize) {
        let queues = self.shared.queues.lock();
        (
            queues.login.len(),
            queues.registration.len(),
            self.shared.running.load(Ordering::Relaxed),
        )
    }

    /// Whether a job of `priority` would find a place now: a cheap check before work that
    /// only makes sense if the hash will run (a flood is then refused without touching the
    /// store). The place is not reserved; [`PasswordHasherPool::hash`] checks again.
    #[must_use]
    pub fn has_room(&self, priority: Priority) -> bool {
        let queues = self.shared.queues.lock();
        match priority {
            Priority::Login => {
                queues.login.len() < self.shared.login_capacity.load(Ordering::Relaxed)
            }
            Priority::Registration => {
                queues.registration.len()
                    < self.shared.registration_capacity.load(Ordering::Relaxed)
            }
        }
    }

    fn submit(&self, priority: Priority, job: Job) -> Result<(), AuthError> {
        let mut queues = self.shared.queues.lock();
        let (queue, capacity) = match priority {
            Priority::Login => (&mut queues.login, &self.shared.login_capacity),
            Priority::Registration => {
                (&mut queues.registration, &self.shared.registration_capacity)
            }
        };
        if queue.len() >= capacity.load(Ordering::Relaxed) {
            return Err(AuthError::Overloaded { retry_after: 1 });
        }
        queue.push_back(job);
        drop(queues);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Hashes `password` into a PHC string, as a [`Priority::Registration`] job.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a password over [`MAX_PASSWORD_BYTES`],
    /// [`AuthError::Overloaded`] when the queue is full, [`AuthError::Internal`] when hashing
    /// fails.
    pub async fn hash(&self, password: SecretString) -> Result<String, AuthError> {
        check_length(&password)?;
        let params = self.params.clone();
        self.run(Priority::Registration, move || {
            hash_with(&params, password.expose_secret().as_bytes())
        })
        .await?
    }

    /// Checks `password` against `stored`, as a [`Priority::Login`] job; with no stored hash
    /// (unknown user) it checks against a dummy hash so that the answer takes the same time.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for a password over [`MAX_PASSWORD_BYTES`] (no stored
    /// password can be that long), [`AuthError::Overloaded`] when the queue is full,
    /// [`AuthError::Internal`] when the worker fails.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, AuthError> {
        check_length(&password)?;
        let real = stored.is_some();
        let params = self.params.clone();
        let dummy = self.dummy_hash.clone();
        self.run(Priority::Login, move || {
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
        priority: Priority,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let shared = self.shared.clone();
        self.submit(
            priority,
            Box::new(move || {
                // The caller's future was dropped (client gone, request cancelled): nobody
                // waits for this hash, so it is not computed.
                if done.is_closed() {
                    return;
                }
                let started = std::time::Instant::now();
                let output = span.in_scope(work);
                if let Some(observe) = shared.observer.get() {
                    observe(priority, started.elapsed());
                }
                let _ = done.send(output);
            }),
        )?;
        result
            .await
            .map_err(|_| AuthError::Internal("password worker stopped".into()))
    }
}

/// Refuses passwords over [`MAX_PASSWORD_BYTES`] before any hashing, on every path.
fn check_length(password: &SecretString) -> Result<(), AuthError> {
    if password.expose_secret().len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::InvalidInput(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
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
    if display
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
    {
        return Err(AuthError::InvalidInput(
            "username must not contain spaces, control or invisible characters".into(),
        ));
    }
    // Case folding after NFKC, then NFKC again: the key is stable under both.
    let key = display.to_lowercase().nfkc().collect();
    Ok(Username { display, key })
}

/// Characters that render as nothing or change how neighbours render, so that two names that
/// look the same are not (`dave` and `dave\u{200b}`): Unicode's Default_Ignorable_Code_Point
/// set (zero-width spaces and joiners, bidirectional controls, variation selectors, fillers,
/// tags, the soft hyphen), and private-use characters. The same exclusions as PRECIS
/// (RFC 8264 section 9.13 and 9.14) for identifiers.
fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
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

    /// Runs a job of `priority` that keeps its worker busy until the sender is used.
    fn hold_a_worker(
        pool: &Arc<PasswordHasherPool>,
        priority: Priority,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), AuthError>>,
    ) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let pool = pool.clone();
        let held = tokio::spawn(async move {
            pool.run(priority, move || {
                let _ = wait.recv();
            })
            .await
        });
        (release, held)
    }

    fn small_pool(threads: usize) -> PasswordHasherPool {
        PasswordHasherPool::new(
            Argon2Settings {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            threads,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_job_whose_caller_has_gone_is_never_hashed() {
        let pool = Arc::new(small_pool(1));
        // Keep the only worker busy until released.
        let (release, blocker) = hold_a_worker(&pool, Priority::Login);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let abandoned = pool.run(Priority::Login, move || flag.store(true, Ordering::SeqCst));
        // Submitted, then the caller goes away (a disconnected client).
        let _ = tokio::time::timeout(std::time::Duration::from_millis(20), abandoned).await;
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        // A later job runs after the abandoned one would have.
        pool.run(Priority::Login, || ()).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst), "the abandoned job ran");
    }

    #[tokio::test]
    async fn a_full_queue_answers_overloaded_at_once_and_logins_have_their_own_places() {
        let pool = Arc::new(small_pool(1));
        pool.set_queue_capacity(4); // 4 logins, 1 registration may wait
        let (release, blocker) = hold_a_worker(&pool, Priority::Login);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let p = pool.clone();
        let queued_registration =
            tokio::spawn(
                async move { p.hash(SecretString::from("one waiting registration")).await },
            );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let refused = pool.hash(SecretString::from("a second registration")).await;
        assert!(matches!(
            refused,
            Err(AuthError::Overloaded { retry_after: 1 })
        ));
        // Logins still find room.
        let p = pool.clone();
        let login = tokio::spawn(async move {
            p.verify(SecretString::from("some password here"), None)
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(pool.load().0, 1, "the login waits in its own queue");
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert!(login.await.unwrap().is_ok());
        assert!(queued_registration.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn registrations_never_take_every_thread_from_logins() {
        let pool = Arc::new(small_pool(2));
        let (release, first) = hold_a_worker(&pool, Priority::Registration);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = started.clone();
        let p = pool.clone();
        let second = tokio::spawn(async move {
            p.run(Priority::Registration, move || {
                flag.store(true, Ordering::SeqCst)
            })
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // The second thread is kept for logins: a login runs while the registration waits.
        pool.run(Priority::Login, || ()).await.unwrap();
        assert!(
            !started.load(Ordering::SeqCst),
            "a second registration took the last thread"
        );
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert!(started.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn passwords_over_the_cap_are_refused_before_hashing() {
        let pool = pool();
        let long = SecretString::from("x".repeat(MAX_PASSWORD_BYTES + 1));
        assert!(matches!(
            pool.verify(long.clone(), None).await,
            Err(AuthError::InvalidInput(_))
        ));
        assert!(matches!(
            pool.hash(long).await,
            Err(AuthError::InvalidInput(_))
        ));
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
    fn invisible_characters_are_refused_in_usernames() {
        for name in [
            "dave\u{200b}",
            "da\u{200d}ve",
            "\u{feff}dave",
            "dave\u{202e}",
            "dave\u{00ad}",
            "dave\u{e0041}",
            "dave\u{fe0f}",
            "dave\u{e000}",
            "dave\u{2028}",
        ] {
            assert!(normalize_username(name).is_err(), "{name:?}");
        }
        assert!(normalize_username("dave").is_ok());
        assert!(normalize_username("zoë-ünïcode_ok.1").is_ok());
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
