//! The references our figures are set against, run in the same session on the same data:
//! the server's own client and binlog tool (the source's limits) and python-mysql-replication
//! (a binlog decoder users know).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

/// The first of `names` that runs with `--version`.
pub(crate) async fn find_tool(names: &[&'static str]) -> Option<&'static str> {
    for name in names {
        let ok = Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if ok {
            return Some(name);
        }
    }
    None
}

/// Runs `cmd` with its output thrown away; the wall time from spawn to exit.
async fn timed(cmd: &mut Command, what: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let elapsed = started.elapsed();
    if out.status.success() {
        Ok(elapsed)
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `mariadb --quick -e 'SELECT * FROM table' > /dev/null`: the server's own read of the
/// table, streamed row by row to a client that only prints.
pub(crate) async fn raw_select(client: &str, port: u16, table: &str) -> Result<Duration, String> {
    timed(
        Command::new(client)
            .args(["--quick", "-h127.0.0.1", "-uroot"])
            .arg(format!("-P{port}"))
            .args(["-e", &format!("SELECT * FROM {table}")]),
        &format!("`{client} --quick -e 'SELECT * FROM {table}'`"),
    )
    .await
}

/// `mariadb-binlog --read-from-remote-server --raw FILE`: the binlog as fast as the server
/// sends it, written to `dir` undecoded (the wire's limit).
pub(crate) async fn raw_binlog(
    tool: &str,
    port: u16,
    file: &str,
    dir: &Path,
) -> Result<Duration, String> {
    timed(
        Command::new(tool)
            .args([
                "--read-from-remote-server",
                "--raw",
                "-h127.0.0.1",
                "-uroot",
            ])
            .arg(format!("-P{port}"))
            .arg(format!("--result-file={}/", dir.display()))
            .arg(file),
        &format!("`{tool} --read-from-remote-server --raw {file}`"),
    )
    .await
}

/// Reads the binlog from `argv[2]` with python-mysql-replication, materialising every
/// row (`event.rows` decodes the row images into Python values), and prints the rows
/// and the seconds from opening the stream to the last row (the interpreter's start and
/// the import are not counted).
const PYTHON_DECODER: &str = r#"
import sys, time
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent
port, log_file, limit, server_id = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
start = time.perf_counter()
stream = BinLogStreamReader(
    connection_settings={"host": "127.0.0.1", "port": port, "user": "root", "passwd": ""},
    server_id=server_id, blocking=False, resume_stream=True, log_file=log_file, log_pos=4,
    only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
    only_schemas=["bench"], only_tables=["t"])
rows = 0
for event in stream:
    rows += len(event.rows)
    if rows >= limit:
        break
elapsed = time.perf_counter() - start
stream.close()
print(rows, elapsed)
"#;

/// A Python interpreter with python-mysql-replication installed.
#[derive(Debug, Clone)]
pub(crate) struct Python {
    pub(crate) exe: PathBuf,
    /// The installed `mysql-replication` version.
    pub(crate) version: String,
}

impl Python {
    /// Checks that `exe` imports `pymysqlreplication`; the error says why not.
    pub(crate) async fn open(exe: &Path) -> Result<Self, String> {
        let out = Command::new(exe)
            .args([
                "-c",
                "import importlib.metadata as m, pymysqlreplication; print(m.version('mysql-replication'))",
            ])
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} cannot import pymysqlreplication: {}",
                exe.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self {
            exe: exe.to_path_buf(),
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        })
    }

    /// Decodes up to `limit` rows of `bench.t` from the start of `file`: (rows, time).
    pub(crate) async fn decode(
        &self,
        port: u16,
        file: &str,
        limit: u64,
        server_id: u32,
    ) -> Result<(u64, Duration), String> {
        let out = Command::new(&self.exe)
            .args(["-c", PYTHON_DECODER])
            .arg(port.to_string())
            .arg(file)
            .arg(limit.to_string())
            .arg(server_id.to_string())
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", self.exe.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "python-mysql-replication failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let mut parts = text.split_whitespace();
        let rows = parts.next().and_then(|r| r.parse().ok());
        let secs = parts.next().and_then(|s| s.parse::<f64>().ok());
        match (rows, secs) {
            (Some(rows), Some(secs)) if secs.is_finite() && secs > 0.0 => {
                Ok((rows, Duration::from_secs_f64(secs)))
            }
            _ => Err(format!(
                "python-mysql-replication printed '{}' instead of 'ROWS SECONDS'",
                text.trim()
            )),
        }
    }
}
