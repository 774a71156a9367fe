//! The moto AWS emulator (`moto_server`), started on a free loopback port for a test
//! binary and stopped when it is dropped or when the test process exits.
//!
//! One server serves every test of a binary through [`shared`]; tests that share it use
//! unique resource names (see `seed`). [`Moto::reset`] clears every backend, for a test
//! that owns its server. This module does not seed anything and builds no AWS clients.

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// The moto version the tests are written against; its gaps are listed in the design notes.
pub const MOTO_VERSION: &str = "5.2.5";

/// The command that installs the emulator, as CI runs it.
pub const INSTALL_COMMAND: &str = "pip install 'moto[server]==5.2.5' flask flask-cors";

/// How long the server may take to respond to its first request. It is ready in about 3 s
/// on an idle machine, and the margin covers a machine busy compiling or running tests.
const READY_TIMEOUT: Duration = Duration::from_secs(45);

/// How many times to try another port when the server does not come up, because the port
/// picked is released before `moto_server` binds it and another process may take it.
const START_ATTEMPTS: usize = 3;

/// Why the emulator could not be started or called.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    /// `moto_server` is not on `PATH`.
    #[error("moto_server is not installed (no moto_server on PATH): run `{INSTALL_COMMAND}`")]
    NotInstalled,
    /// Spawning the process failed.
    #[error("cannot start moto_server: {0}")]
    Spawn(std::io::Error),
    /// The server did not respond in time or exited. The log tail shows why.
    #[error("moto_server on port {port} did not start: {reason}\n--- moto_server log ---\n{log}")]
    NotReady { port: u16, reason: String, log: String },
    /// A call to the server's own API failed.
    #[error("moto API call {what} failed: {reason}")]
    Api { what: String, reason: String },
}

/// A running `moto_server` on 127.0.0.1.
#[derive(Debug)]
pub struct Moto {
    port: u16,
    /// The `sh` process that runs `moto_server` and kills it when its standard input closes.
    supervisor: Child,
    /// The write end of the supervisor's standard input. Dropping it, or the test process
    /// exiting, makes the supervisor kill `moto_server`.
    lifeline: Option<ChildStdin>,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

static SHARED: OnceCell<Moto> = OnceCell::const_new();

/// Returns the server shared by every test of this binary, starting it on first use.
///
/// # Panics
///
/// Panics with the reason (and the install command when `moto_server` is missing) when
/// the server cannot be started.
pub async fn shared() -> &'static Moto {
    SHARED
        .get_or_init(|| async {
            match Moto::start().await {
                Ok(moto) => moto,
                Err(error) => panic!("{error}"),
            }
        })
        .await
}

impl Moto {
    /// Starts a server on a free loopback port and waits until it responds.
    pub async fn start() -> Result<Moto, MotoError> {
        let program = find_on_path("moto_server").ok_or(MotoError::NotInstalled)?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let mut moto = Moto::spawn(&program)?;
            match moto.wait_ready().await {
                Ok(()) => return Ok(moto),
                Err(error) => {
                    moto.stop();
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.expect("at least one start attempt"))
    }

    fn spawn(program: &Path) -> Result<Moto, MotoError> {
        let port = free_port().map_err(MotoError::Spawn)?;
        let log_dir = tempfile::tempdir().map_err(MotoError::Spawn)?;
        let log_path = log_dir.path().join("moto_server.log");
        let log = std::fs::File::create(&log_path).map_err(MotoError::Spawn)?;
        let log_err = log.try_clone().map_err(MotoError::Spawn)?;

        // `sh` runs the server in the background and waits for its own standard input to
        // close, which happens when this process drops the pipe or exits for any reason,
        // even killed. A static `Moto` is never dropped, so this is what stops the shared
        // server at the end of a test binary.
        let script = r#""$0" -H 127.0.0.1 -p "$1" & pid=$!; cat >/dev/null; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null"#;
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(program)
            .arg(port.to_string())
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(MotoError::Spawn)?;
        let lifeline = supervisor.stdin.take();
        Ok(Moto {
            port,
            supervisor,
            lifeline,
            log_path,
            _log_dir: log_dir,
        })
    }

    async fn wait_ready(&mut self) -> Result<(), MotoError> {
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = self.supervisor.try_wait() {
                return Err(self.not_ready(format!("the process exited with {status}")));
            }
            // Any HTTP response means the server is up. The dashboard path returns 200.
            let request = client.get(format!("{}/moto-api/", self.endpoint()));
            if request.timeout(Duration::from_secs(2)).send().await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(self.not_ready(format!("no response within {} s", READY_TIMEOUT.as_secs())));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn not_ready(&self, reason: String) -> MotoError {
        MotoError::NotReady {
            port: self.port,
            reason,
            log: self.log_tail(),
        }
    }

    /// Returns the server's base URL, such as `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Returns the loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Clears every backend (`POST /moto-api/reset`). Only for a test that owns its
    /// server: on the shared one it deletes other tests' resources.
    pub async fn reset(&self) -> Result<(), MotoError> {
        let url = format!("{}/moto-api/reset", self.endpoint());
        let response = reqwest::Client::new()
            .post(&url)
            .send()
            .await
            .map_err(|e| MotoError::Api { what: url.clone(), reason: e.to_string() })?;
        if !response.status().is_success() {
            return Err(MotoError::Api { what: url, reason: format!("HTTP {}", response.status()) });
        }
        Ok(())
    }

    /// Returns the last 4 KiB of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log_path) {
            let _ = file.read_to_string(&mut text);
        }
        let start = text.len().saturating_sub(4096);
        let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text[start..].to_string()
    }

    fn stop(&mut self) {
        self.lifeline.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.supervisor.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The supervisor did not stop `moto_server` in time; killing the shell orphans the
        // server, so this is the last resort.
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
