//! A private S3-compatible server for tests: `moto_server` (`pip install 'moto[server]'`),
//! which honours conditional writes (`If-None-Match: *` and `If-Match` on `PutObject`).
//!
//! [`S3Server::start_or_skip`] picks a free port, starts the server, waits until it answers
//! and creates a bucket; the server is killed when the value is dropped. When `moto_server`
//! is missing the test is skipped, unless `CDC_TEST_REQUIRE_S3=1` (which `scripts/test.sh`
//! sets) makes that a failure, as `CDC_TEST_REQUIRE_MARIADB` does for MariaDB.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Set to `1` to fail, not skip, tests that need the S3 server when it cannot be started.
pub const REQUIRE_S3_ENV: &str = "CDC_TEST_REQUIRE_S3";

/// Why the server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum S3ServerError {
    /// `moto_server` is not installed.
    #[error(
        "moto_server not found (install it with `pip install 'moto[server]'`, or set CDC_MOTO_SERVER to its path)"
    )]
    NotInstalled,
    /// It was found but did not come up.
    #[error("moto_server did not start: {0}")]
    Start(String),
}

/// A running `moto_server` with one bucket, `cdc-state`.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    port: u16,
    bucket: String,
}

fn find_moto() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CDC_MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
}

/// One raw HTTP/1.0 request to 127.0.0.1:`port`; the status code of the answer.
async fn request(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(
            format!(
                "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:.80}")))
}

impl S3Server {
    /// Starts a server, or `None` (the test returns early) when `moto_server` is missing,
    /// unless `CDC_TEST_REQUIRE_S3=1` is set: then, and when it is installed but does not
    /// start, this panics.
    pub async fn start_or_skip() -> Option<Self> {
        match Self::start().await {
            Ok(server) => Some(server),
            Err(e @ S3ServerError::NotInstalled) => {
                assert!(
                    std::env::var(REQUIRE_S3_ENV).as_deref() != Ok("1"),
                    "{e} ({REQUIRE_S3_ENV}=1 makes this a failure)"
                );
                eprintln!("SKIPPED: this test needs an S3 server: {e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts a server on a free port and creates the bucket.
    pub async fn start() -> Result<Self, S3ServerError> {
        let moto = find_moto().ok_or(S3ServerError::NotInstalled)?;
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| S3ServerError::Start(format!("no free port: {e}")))?
            .port();
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| S3ServerError::Start(format!("{}: {e}", moto.display())))?;
        let mut server = Self {
            child,
            port,
            bucket: "cdc-state".into(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(S3ServerError::Start(format!("it exited with {status}")));
            }
            match request(port, "PUT", &format!("/{}", server.bucket)).await {
                Ok(200) => return Ok(server),
                Ok(code) if Instant::now() > deadline => {
                    return Err(S3ServerError::Start(format!(
                        "creating the bucket answered {code}"
                    )));
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(S3ServerError::Start(format!(
                        "no answer on port {port}: {e}"
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `s3://cdc-state/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{}", self.bucket, prefix.trim_matches('/'))
    }

    /// The environment a client needs to reach this server (what `object_store` reads):
    /// endpoint, plain HTTP allowed, test credentials, a region.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing-key-id".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing-secret-key".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// The same as `object_store` configuration keys, for a client built in the test
    /// process (the environment is shared by every test thread).
    pub fn options(&self) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect()
    }

    /// Freezes the server (SIGSTOP): requests hang until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [paused](Self::pause) server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let _ = Command::new("kill")
            .args([which, &self.child.id().to_string()])
            .status();
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
