//! A private MariaDB server for tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use thiserror::Error;

/// Set to `1` to make a missing MariaDB a test failure instead of a skip.
pub const REQUIRE_MARIADB_ENV: &str = "CDC_TEST_REQUIRE_MARIADB";

const INSTALL_HINT: &str = "install the MariaDB server (Debian/Ubuntu: `sudo apt-get install -y mariadb-server`; \
     macOS: `brew install mariadb`), or point CDC_MARIADBD and CDC_MARIADB_INSTALL_DB at the binaries";

/// Why a private MariaDB could not be started.
#[derive(Debug, Error)]
pub enum MariaDbError {
    /// `mariadbd` or `mariadb-install-db` is not installed.
    #[error("cannot find `{binary}`: {hint}")]
    NotInstalled {
        /// The missing program.
        binary: &'static str,
        /// How to install it.
        hint: &'static str,
    },
    /// A step of the start-up failed.
    #[error("starting MariaDB failed while {step}: {message}")]
    Start {
        /// What was being done.
        step: &'static str,
        /// The error and the server log's tail.
        message: String,
    },
    /// A query failed.
    #[error("MariaDB query failed: {0}")]
    Query(#[from] mysql_async::Error),
}

/// A MariaDB server of its own: temporary data directory, free port on 127.0.0.1, binary
/// log on with `binlog_format=ROW` and `binlog_row_image=FULL`, a unique `server_id`, user
/// `root` without password. Stopped (and its files removed) when dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), cdc_testkit::MariaDbError> {
/// let db = cdc_testkit::MariaDb::start().await?;
/// db.execute("CREATE DATABASE shop").await?;
/// println!("connect to {}", db.url());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MariaDb {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    server_id: u32,
    pool: mysql_async::Pool,
    /// How the server was started, to start it again the same way.
    mariadbd: PathBuf,
    args: Vec<String>,
}

static NEXT_SERVER_ID: AtomicU32 = AtomicU32::new(0);

fn find_binary(name: &'static str, env: &str) -> Result<PathBuf, MariaDbError> {
    if let Ok(p) = std::env::var(env) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/local/sbin",
                "/usr/bin",
                "/usr/local/bin",
                "/opt/homebrew/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(MariaDbError::NotInstalled {
            binary: name,
            hint: INSTALL_HINT,
        })
}

fn free_port() -> Result<u16, MariaDbError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| MariaDbError::Start {
            step: "finding a free port",
            message: e.to_string(),
        })
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl MariaDb {
    /// Starts a server, or fails with a message that says what is missing.
    pub async fn start() -> Result<Self, MariaDbError> {
        Self::start_with_args(&[]).await
    }

    /// Starts a server with extra `mariadbd` arguments (e.g. `--binlog-row-image=MINIMAL`).
    pub async fn start_with_args(extra_args: &[&str]) -> Result<Self, MariaDbError> {
        let mariadbd = find_binary("mariadbd", "CDC_MARIADBD")?;
        let install_db = find_binary("mariadb-install-db", "CDC_MARIADB_INSTALL_DB")?;
        let dir = tempfile::Builder::new()
            .prefix("cdc-mariadb-")
            .tempdir()
            .map_err(|e| MariaDbError::Start {
                step: "creating a temporary directory",
                message: e.to_string(),
            })?;
        let data = dir.path().join("data");
        let install = Command::new(&install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            // A private tmpdir: two installs sharing /tmp collide on temporary tables.
            .arg(format!("--tmpdir={}", dir.path().display()))
            .args(user_arg())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| MariaDbError::Start {
                step: "running mariadb-install-db",
                message: e.to_string(),
            })?;
        if !install.status.success() {
            return Err(MariaDbError::Start {
                step: "running mariadb-install-db",
                message: String::from_utf8_lossy(&install.stderr).into_owned(),
            });
        }
        let init = dir.path().join("init.sql");
        std::fs::write(
            &init,
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';\n\
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n",
        )
        .map_err(|e| MariaDbError::Start {
            step: "writing init.sql",
            message: e.to_string(),
        })?;
        let server_id = 1000
            + (std::process::id() % 10_000) * 100
            + NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed) % 100;
        let error_log = dir.path().join("error.log");

        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = free_port()?;
            let mut args: Vec<String> = vec!["--no-defaults".into()];
            args.extend(user_arg());
            args.extend([
                format!("--datadir={}", data.display()),
                format!("--port={port}"),
                "--bind-address=127.0.0.1".into(),
                format!("--tmpdir={}", dir.path().display()),
                format!("--socket={}", dir.path().join("mysqld.sock").display()),
                format!("--pid-file={}", dir.path().join("mysqld.pid").display()),
                format!("--log-error={}", error_log.display()),
                format!("--init-file={}", init.display()),
                format!("--log-bin={}", data.join("binlog").display()),
                "--binlog-format=ROW".into(),
                "--binlog-row-image=FULL".into(),
                format!("--server-id={server_id}"),
                "--skip-name-resolve".into(),
                "--character-set-server=utf8mb4".into(),
                "--collation-server=utf8mb4_general_ci".into(),
                "--innodb-buffer-pool-size=128M".into(),
                "--innodb-flush-log-at-trx-commit=2".into(),
                "--sync-binlog=0".into(),
                "--max-connections=500".into(),
            ]);
            args.extend(extra_args.iter().map(|a| (*a).to_string()));
            let child = spawn_server(&mariadbd, &args)?;
            let mut child = child;
            let pool = mysql_async::Pool::new(
                mysql_async::OptsBuilder::default()
                    .ip_or_hostname("127.0.0.1")
                    .tcp_port(port)
                    .user(Some("root")),
            );
            match wait_ready(&mut child, &pool, &error_log).await {
                Ok(()) => {
                    return Ok(Self {
                        child: Some(child),
                        dir,
                        port,
                        server_id,
                        pool,
                        mariadbd,
                        args,
                    });
                }
                Err(e) => {
                    // Most likely the port was taken between choosing and binding: retry.
                    last_error = e;
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        Err(MariaDbError::Start {
            step: "waiting for the server",
            message: last_error,
        })
    }

    /// Starts a server; when MariaDB is not installed, prints how to install it and returns
    /// `None` so the test can return early, unless `CDC_TEST_REQUIRE_MARIADB=1` is set, in
    /// which case it panics with that message. Other start-up failures always panic.
    pub async fn start_or_skip() -> Option<Self> {
        Self::start_with_args_or_skip(&[]).await
    }

    /// [`start_or_skip`](Self::start_or_skip) with extra `mariadbd` arguments, e.g. a
    /// [`TestTls`](crate::TestTls)'s [`mariadb_args`](crate::TestTls::mariadb_args) to serve
    /// TLS, or `--skip-ssl` for a server without TLS.
    pub async fn start_with_args_or_skip(extra_args: &[&str]) -> Option<Self> {
        match Self::start_with_args(extra_args).await {
            Ok(db) => Some(db),
            Err(e @ MariaDbError::NotInstalled { .. }) => {
                assert!(
                    std::env::var(REQUIRE_MARIADB_ENV).as_deref() != Ok("1"),
                    "{e} ({REQUIRE_MARIADB_ENV}=1 makes this a failure)"
                );
                eprintln!("SKIPPED: this test needs MariaDB: {e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Whether the MariaDB server binaries are installed, for tests that start MariaDB in
    /// another process: when they are missing, prints how to install them and returns
    /// `false`, or panics when `CDC_TEST_REQUIRE_MARIADB=1`.
    pub fn installed_or_skip() -> bool {
        let found = find_binary("mariadbd", "CDC_MARIADBD")
            .and_then(|_| find_binary("mariadb-install-db", "CDC_MARIADB_INSTALL_DB"));
        match found {
            Ok(_) => true,
            Err(e) => {
                assert!(
                    std::env::var(REQUIRE_MARIADB_ENV).as_deref() != Ok("1"),
                    "{e} ({REQUIRE_MARIADB_ENV}=1 makes this a failure)"
                );
                eprintln!("SKIPPED: this test needs MariaDB: {e}");
                false
            }
        }
    }

    /// `mysql://root@127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's `server_id`.
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// The data directory (binlog files are there).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A connection as root.
    pub async fn conn(&self) -> Result<mysql_async::Conn, MariaDbError> {
        Ok(self.pool.get_conn().await?)
    }

    /// Runs statements (separated by `;`) as root.
    pub async fn execute(&self, sql: &str) -> Result<(), MariaDbError> {
        let mut conn = self.conn().await?;
        conn.query_drop(sql).await?;
        Ok(())
    }

    /// Runs a query and returns every row as text (NULL as `None`).
    pub async fn query_text(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, MariaDbError> {
        let mut conn = self.conn().await?;
        let rows: Vec<mysql_async::Row> = conn.query(sql).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                row.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(b) => {
                            Some(String::from_utf8_lossy(&b).into_owned())
                        }
                        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                    })
                    .collect()
            })
            .collect())
    }

    /// Shuts the server down cleanly and starts it again on the same data directory and
    /// port (for tests of a source server restart). Connections break meanwhile.
    pub async fn restart(&mut self) -> Result<(), MariaDbError> {
        let _ = self.execute("SHUTDOWN").await;
        if let Some(mut child) = self.child.take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut child = spawn_server(&self.mariadbd, &self.args)?;
        let error_log = self.dir.path().join("error.log");
        // The old pool's connections are dead; a new one avoids handing them out.
        self.pool = mysql_async::Pool::new(
            mysql_async::OptsBuilder::default()
                .ip_or_hostname("127.0.0.1")
                .tcp_port(self.port)
                .user(Some("root")),
        );
        let ready = wait_ready(&mut child, &self.pool, &error_log).await;
        self.child = Some(child);
        ready.map_err(|message| MariaDbError::Start {
            step: "restarting the server",
            message,
        })
    }

    /// Stops the server (also done on drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_server(mariadbd: &Path, args: &[String]) -> Result<Child, MariaDbError> {
    Command::new(mariadbd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| MariaDbError::Start {
            step: "spawning mariadbd",
            message: e.to_string(),
        })
}

async fn wait_ready(
    child: &mut Child,
    pool: &mysql_async::Pool,
    error_log: &Path,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "mariadbd exited with {status}; its log ends with:\n{}",
                log_tail(error_log)
            ));
        }
        if let Ok(mut conn) = pool.get_conn().await {
            if conn.query_drop("SELECT 1").await.is_ok() {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "not ready after 60s; its log ends with:\n{}",
                log_tail(error_log)
            ));
        }
        // Polling a process that is starting up: there is no event to wait on.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

fn user_arg() -> Vec<String> {
    // mariadbd refuses to run as root unless told to; harmless for other users.
    match std::env::var("USER").as_deref() {
        Ok("root") | Err(_) => vec!["--user=root".into()],
        Ok(_) => Vec::new(),
    }
}
