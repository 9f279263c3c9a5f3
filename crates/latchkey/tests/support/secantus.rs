//! Test support: a SecantusDB server (MongoDB wire protocol, from PyPI, installed into `.venv`
//! by `scripts/test.sh`) on a free port with throw-away storage, stopped when dropped and even
//! when the test process dies (a shell wrapper kills it when our end of its stdin closes).
//!
//! Shared by the store conformance suite (`src/store/conformance.rs`) and the black-box tests
//! (`tests/server`). When the server binary is missing the tests print a skip message and
//! pass, except under `CI=true`, where they fail.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

#[path = "required.rs"]
pub mod required;

/// A running (or stopped, for outage tests) SecantusDB server.
pub struct Secantus {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// Runs the server (`$0 $@`) on a fresh storage directory until our end of its stdin closes
/// (a stop, or the test process dying), then stops it: SIGTERM, SIGKILL after two seconds
/// (SecantusDB sometimes hangs in shutdown), and removes the directory. Like `:memory:`
/// storage, which is gone after a restart, but cleaned up even when the server is killed.
const WRAPPER: &str = r#"
exec 3<&0
dir=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-secantus.XXXXXX") || exit 1
"$0" "$@" --storage-path "$dir" </dev/null &
pid=$!
read -r _ <&3
kill "$pid" 2>/dev/null
for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$dir"
"#;

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SECANTUSD") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/secantusd-py")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Secantus {
    /// Starts a server on a free port; `None` (after printing why) when SecantusDB is not
    /// installed, a failure under CI.
    pub fn start() -> Option<Self> {
        let binary = binary();
        if !binary.exists() {
            required::service_missing(
                "the MongoDB tests",
                "SecantusDB",
                &format!(
                    "not installed at {}: run `bash scripts/test.sh` (it creates .venv)",
                    binary.display()
                ),
            );
            return None;
        }
        let mut server = Self {
            binary,
            port: free_port(),
            child: None,
        };
        server.restart();
        Some(server)
    }

    /// A server shared by every test of this process (each test uses its own database).
    pub fn shared() -> Option<&'static Mutex<Self>> {
        static SHARED: OnceLock<Option<Mutex<Secantus>>> = OnceLock::new();
        SHARED
            .get_or_init(|| Self::start().map(Mutex::new))
            .as_ref()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!(
            "mongodb://127.0.0.1:{}/{database}?directConnection=true",
            self.port
        )
    }

    /// A fresh database name.
    pub fn fresh_database() -> String {
        format!("latchkey_test_{}", uuid::Uuid::new_v4().simple())
    }

    /// Stops the server (its data is gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take()); // the wrapper kills the server and waits for it
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port.to_string();
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(WRAPPER)
            .arg(&self.binary)
            .args(["--host", "127.0.0.1", "--port", &port])
            .args(["--cache-size", "128M", "--log-level", "WARNING"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning SecantusDB");
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("SecantusDB exited at start ({status}); port {port}");
            }
            assert!(
                Instant::now() < deadline,
                "SecantusDB did not accept on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }
}

impl Drop for Secantus {
    fn drop(&mut self) {
        self.stop();
    }
}
