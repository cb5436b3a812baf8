//! The end-to-end run: a private MariaDB and the Doris emulator in this process, each
//! measured pipeline in a child process, the references in the same run; prints markdown.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cdc_bench::rowgen::{ColumnKind, TableSpec};
use cdc_connector_mysql::bench_api::BinlogReplay;
use cdc_testkit::{DorisEmulator, MariaDb};
use mysql_async::prelude::Queryable as _;

use crate::child::{self, Outcome};
use crate::latency;
use crate::phase::{Mode, PhaseArgs, SinkKind};
use crate::report::{
    Table, Target, mb_per_sec, median, micro_tables, millis, per_sec, ratio, read_criterion, rss,
    rss_mb, secs, targets_table, thousands,
};
use crate::tools::{self, Python};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What to run (from the command line).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) rows: u64,
    pub(crate) big_rows: u64,
    pub(crate) wide_rows: u64,
    pub(crate) latency_rate: u64,
    pub(crate) latency_secs: u64,
    pub(crate) warmup_secs: u64,
    pub(crate) flush_ms: u64,
    pub(crate) repeat: usize,
    pub(crate) python: Option<PathBuf>,
    pub(crate) python_missing: Option<String>,
    pub(crate) python_rows: u64,
    pub(crate) criterion: Option<PathBuf>,
    /// Rows of each key-type table (integer, composite, string key); 0 skips them.
    pub(crate) key_rows: u64,
}

const REFERENCE_DDL: &str = "(id BIGINT PRIMARY KEY, k INT, name VARCHAR(32), amount DECIMAL(12,2), created DATETIME(3), score DOUBLE)";

/// Reference-table rows `a..=b` from MariaDB's sequence engine.
fn reference_insert(table: &str, a: u64, b: u64) -> String {
    format!(
        "INSERT INTO bench.{table} SELECT seq, seq % 1000, CONCAT('name-', seq), seq / 100, \
         '2024-01-01 00:00:00.123' + INTERVAL seq SECOND, seq * 1.5 FROM bench.seq_{a}_to_{b}"
    )
}

/// The SQL value of wide-table column `i` (of `kind`) in row `seq`.
fn wide_expr(kind: ColumnKind, i: usize) -> String {
    match kind {
        ColumnKind::Int => format!("(seq * {i}) % 1000000"),
        ColumnKind::VarChar(_) => format!("CONCAT('v{i}-', seq)"),
        ColumnKind::Decimal(..) => format!("(seq % 100000) / 100 + {i}"),
        ColumnKind::DateTime(_) => {
            format!("'2024-01-01 00:00:00.123' + INTERVAL (seq + {i}) SECOND")
        }
        ColumnKind::Double => format!("seq * 1.25 + {i}"),
        ColumnKind::BigInt => format!("seq * 1000 + {i}"),
        ColumnKind::Date => "'2024-01-01' + INTERVAL (seq % 3650) DAY".into(),
        _ => "NULL".into(),
    }
}

/// Inserts rows `first..=last` with `insert(a, b)` in statements of `chunk` rows, without
/// writing them to the binlog (they are only snapshot: a binlog of them would cost time
/// and disk for nothing).
async fn load_quietly(
    db: &MariaDb,
    first: u64,
    last: u64,
    chunk: u64,
    insert: impl Fn(u64, u64) -> String,
) -> Result<(), BoxError> {
    let mut conn = db.conn().await?;
    conn.query_drop("SET sql_log_bin = 0").await?;
    let mut a = first;
    while a <= last {
        let b = (a + chunk - 1).min(last);
        conn.query_drop(insert(a, b)).await?;
        a = b + 1;
    }
    conn.query_drop("SET sql_log_bin = 1").await?;
    Ok(())
}

async fn current_binlog(db: &MariaDb) -> Result<String, BoxError> {
    let rows = db.query_text("SHOW MASTER STATUS").await?;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .ok_or_else(|| "SHOW MASTER STATUS returned no binlog file: is log_bin on?".into())
}

/// What the phases of one run share.
struct Ctx<'a> {
    port: u16,
    client: Option<&'static str>,
    doris: &'a DorisEmulator,
    flush_ms: u64,
    /// The last replication server id handed out (each phase gets its own).
    server_id: u32,
}

impl Ctx<'_> {
    fn phase(
        &mut self,
        name: &str,
        table: &str,
        mode: Mode,
        sink: SinkKind,
        expect: u64,
    ) -> PhaseArgs {
        self.server_id += 1;
        PhaseArgs {
            port: self.port,
            table: format!("bench.{table}"),
            mode,
            binlog_file: None,
            sink,
            expect,
            fe: (sink == SinkKind::Doris).then(|| self.doris.fe_address()),
            flush_ms: self.flush_ms,
            two_phase: false,
            server_id: self.server_id,
            name: name.to_string(),
            parallelism: None,
        }
    }

    /// Snapshots of `bench.{table}` (`rows` rows) next to the raw SELECT, `repeat` times
    /// each (medians), and once into the emulator when `with_doris`; adds rows to `st`.
    /// Returns (ours, raw SELECT, our peak RSS).
    async fn snapshot(
        &mut self,
        st: &mut Table,
        label: &str,
        table: &str,
        rows: u64,
        repeat: usize,
        with_doris: bool,
    ) -> Result<(Duration, Option<Duration>, Option<u64>), BoxError> {
        let mut raw_runs = Vec::new();
        let mut raw_error = None;
        let mut ours_runs = Vec::new();
        let mut ours_rss = Vec::new();
        for _ in 0..repeat {
            match self.client {
                Some(c) => match tools::raw_select(c, self.port, &format!("bench.{table}")).await {
                    Ok(d) => raw_runs.push(d),
                    Err(e) => raw_error = Some(e),
                },
                None => raw_error = Some("neither mariadb nor mysql is installed".to_string()),
            }
            let args = self.phase(
                &format!("snapshot-{table}"),
                table,
                Mode::Snapshot,
                SinkKind::Count,
                rows,
            );
            let o: Outcome = child::counted(&args).await?;
            ours_runs.push(o.elapsed);
            ours_rss.extend(o.rss_kb);
        }
        let raw = (!raw_runs.is_empty()).then(|| median(raw_runs));
        let ours = median(ours_runs);
        let ours_rss = ours_rss.iter().max().copied();
        let blank = |first: String| {
            let mut cells = vec![label.to_string(), first];
            cells.resize(8, String::new());
            cells
        };
        match raw {
            Some(r) => st.row(vec![
                label.to_string(),
                "`mariadb --quick -e 'SELECT *'` (server limit)".into(),
                thousands(rows),
                repeat.to_string(),
                secs(r),
                per_sec(rows, r),
                "n/a".into(),
                "1.00x".into(),
            ]),
            None => st.row(blank(format!(
                "raw SELECT: not measured: {}",
                raw_error.unwrap_or_default()
            ))),
        }
        st.row(vec![
            label.to_string(),
            "**snapshot** → counting sink".into(),
            thousands(rows),
            repeat.to_string(),
            secs(ours),
            per_sec(rows, ours),
            rss(ours_rss),
            raw.map_or("n/a".into(), |r| ratio(ours, r)),
        ]);
        if with_doris {
            let args = self.phase(
                &format!("snapshot-{table}-doris"),
                table,
                Mode::Snapshot,
                SinkKind::Doris,
                rows,
            );
            let o = child::into_doris(&args, self.doris, "bench", table).await?;
            self.doris.execute("DROP DATABASE bench")?;
            st.row(vec![
                label.to_string(),
                "**snapshot** → Doris sink → emulator (rows visible)".into(),
                thousands(rows),
                "1".into(),
                secs(o.elapsed),
                per_sec(rows, o.elapsed),
                rss(o.rss_kb),
                raw.map_or("n/a".into(), |r| ratio(o.elapsed, r)),
            ]);
        }
        Ok((ours, raw, ours_rss))
    }
}

/// A table of the key-type snapshots: the reference table's columns under another key.
struct KeyTable {
    label: &'static str,
    table: &'static str,
    /// The key columns, in key order.
    key: &'static str,
    ddl: &'static str,
    /// The key expressions of row `seq`, in the order of `key`.
    values: &'static str,
}

/// The integer-key case (the reference table's key), a composite (INT, VARCHAR) key and a
/// VARCHAR key under a case-insensitive collation. The text keys are hashes, so key order
/// is not insert order (as with UUIDs or codes), and their tables are as big as the
/// integer one's.
const KEY_TABLES: [KeyTable; 3] = [
    KeyTable {
        label: "integer key `BIGINT`",
        table: "key_int",
        key: "id",
        ddl: "id BIGINT PRIMARY KEY",
        values: "seq",
    },
    KeyTable {
        label: "composite key `(INT, VARCHAR(24))`",
        table: "key_comp",
        key: "tenant, code",
        ddl: "tenant INT NOT NULL, code VARCHAR(24) NOT NULL, PRIMARY KEY (tenant, code)",
        values: "seq DIV 1000, CONCAT('c-', LEFT(MD5(seq), 16))",
    },
    KeyTable {
        label: "string key `VARCHAR(40)` utf8mb4_general_ci",
        table: "key_str",
        key: "code",
        ddl: "code VARCHAR(40) COLLATE utf8mb4_general_ci PRIMARY KEY",
        values: "MD5(seq)",
    },
];

/// Snapshots of the key-type tables, `rows` rows each: one range (`parallelism: 1`), the
/// default, and 4 ranges (`parallelism: 4`), next to the raw SELECT; plus the server's
/// cost of planning the split of the string key (stepping over 3/4 of the key index, as
/// the keyset walk for 4 ranges does).
async fn key_snapshots(
    cx: &mut Ctx<'_>,
    db: &MariaDb,
    rows: u64,
    repeat: usize,
) -> Result<String, BoxError> {
    let mut out = format!(
        "### Snapshot by key type\n\n{} rows per table, each with the reference table's \
         columns under another primary key, into the counting sink: read as one range \
         (`parallelism: 1`), with the default (no `parallelism`: up to 4 ranges for keys \
         split by index dives, one range for a key led by text), and in 4 ranges read at \
         once (`parallelism: 4`). The integer key is cut evenly between its smallest and \
         largest value, the composite key (led by an integer) at the keys that follow evenly \
         spread leading values (index dives), the string key at every n-th key in the \
         server's order (a keyset walk of the key index). \"split planning\" is the server's \
         time to step over 3/4 of the key index (`SELECT key ... ORDER BY key LIMIT 1 OFFSET \
         n`), what the walk for 4 ranges costs. Medians of {repeat} runs; ratios are time \
         ratios, ours ÷ the raw SELECT.\n\n",
        thousands(rows)
    );
    let mut t = Table::new(&[
        "table",
        "measure",
        "time",
        "rows/s",
        "peak RSS",
        "vs. raw SELECT",
    ]);
    for k in &KEY_TABLES {
        log(&format!(
            "key snapshot: loading {rows} rows into bench.{}",
            k.table
        ));
        db.execute(&format!(
            "CREATE TABLE bench.{} ({}, k INT, name VARCHAR(32), amount DECIMAL(12,2), \
             created DATETIME(3), score DOUBLE)",
            k.table, k.ddl
        ))
        .await?;
        let values = k.values;
        let table = k.table;
        load_quietly(db, 1, rows, 50_000, |a, b| {
            format!(
                "INSERT INTO bench.{table} SELECT {values}, seq % 1000, CONCAT('name-', seq), \
                 seq / 100, '2024-01-01 00:00:00.123' + INTERVAL seq SECOND, seq * 1.5 \
                 FROM bench.seq_{a}_to_{b}"
            )
        })
        .await?;
        // Fresh row estimates: the split is sized by them.
        db.execute(&format!("ANALYZE TABLE bench.{table}")).await?;
        let mut raw_runs = Vec::new();
        let mut plan_runs = Vec::new();
        let mut runs: [(Vec<Duration>, Vec<u64>); 3] = Default::default();
        for _ in 0..repeat {
            if let Some(c) = cx.client {
                raw_runs.push(tools::raw_select(c, cx.port, &format!("bench.{table}")).await?);
            }
            let mut conn = db.conn().await?;
            let started = Instant::now();
            conn.query_drop(format!(
                "SELECT {key} FROM bench.{table} ORDER BY {key} LIMIT 1 OFFSET {}",
                (rows * 3 / 4).saturating_sub(1),
                key = k.key
            ))
            .await?;
            plan_runs.push(started.elapsed());
            for (i, parallelism) in [Some(1), None, Some(4)].into_iter().enumerate() {
                let mut args = cx.phase(
                    &format!("snapshot-{table}"),
                    table,
                    Mode::Snapshot,
                    SinkKind::Count,
                    rows,
                );
                args.parallelism = parallelism;
                let o = child::counted(&args).await?;
                runs[i].0.push(o.elapsed);
                runs[i].1.extend(o.rss_kb);
            }
        }
        let raw = (!raw_runs.is_empty()).then(|| median(raw_runs));
        if let Some(r) = raw {
            t.row(vec![
                k.label.into(),
                "`mariadb --quick -e 'SELECT *'`".into(),
                secs(r),
                per_sec(rows, r),
                "n/a".into(),
                "1.00x".into(),
            ]);
        }
        for (i, what) in [
            "**snapshot**, `parallelism: 1` (one range)",
            "**snapshot**, default (no `parallelism`)",
            "**snapshot**, `parallelism: 4` (up to 4 ranges)",
        ]
        .into_iter()
        .enumerate()
        {
            let (times, rss_kb) = std::mem::take(&mut runs[i]);
            let d = median(times);
            t.row(vec![
                k.label.into(),
                what.into(),
                secs(d),
                per_sec(rows, d),
                rss(rss_kb.iter().max().copied()),
                raw.map_or("n/a".into(), |r| ratio(d, r)),
            ]);
        }
        if k.table == "key_str" {
            let d = median(plan_runs);
            t.row(vec![
                k.label.into(),
                "split planning (server, 3/4 of the key index)".into(),
                millis(d),
                String::new(),
                String::new(),
                raw.map_or("n/a".into(), |r| ratio(d, r)),
            ]);
        }
        db.execute(&format!("DROP TABLE bench.{table}")).await?;
    }
    out.push_str(&t.render());
    Ok(out)
}

/// `cdc-bench keys`: only the key-type snapshots, with their own MariaDB.
pub(crate) async fn run_keys(rows: u64, repeat: usize) -> Result<String, BoxError> {
    let db = MariaDb::start().await?;
    let doris = DorisEmulator::start().await?;
    let version = db
        .query_text("SELECT VERSION()")
        .await?
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default();
    let mut cx = Ctx {
        port: db.port(),
        client: tools::find_tool(&["mariadb", "mysql"]).await,
        doris: &doris,
        flush_ms: 1000,
        server_id: 5800,
    };
    db.execute("CREATE DATABASE bench").await?;
    let mut out = format!(
        "Server: MariaDB {version} (the kit's private server: `innodb_buffer_pool_size=128M`).\n\n"
    );
    out.push_str(&key_snapshots(&mut cx, &db, rows, repeat.max(1)).await?);
    Ok(out)
}

fn log(step: &str) {
    eprintln!("== {step}");
}

/// Runs everything and returns the markdown for docs/performance.md (without the header
/// that scripts/bench.sh writes: machine and toolchain).
pub(crate) async fn run(s: Settings) -> Result<String, BoxError> {
    let wall = Instant::now();
    let mut md = String::new();
    let mut targets: Vec<Target> = Vec::new();
    let db = MariaDb::start().await?;
    let doris = DorisEmulator::start().await?;
    let version = db
        .query_text("SELECT VERSION()")
        .await?
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default();
    let client = tools::find_tool(&["mariadb", "mysql"]).await;
    let binlog_tool = tools::find_tool(&["mariadb-binlog", "mysqlbinlog"]).await;
    let python = match (&s.python, &s.python_missing) {
        (Some(exe), _) => Python::open(exe).await,
        (None, Some(why)) => Err(why.clone()),
        (None, None) => Err("no --python given (scripts/bench.sh installs it into a venv)".into()),
    };
    let port = db.port();
    let mut cx = Ctx {
        port,
        client,
        doris: &doris,
        flush_ms: s.flush_ms,
        server_id: 5700,
    };

    // ---- the reference table, loaded as the binlog workload ----
    let rows = s.rows;
    log(&format!(
        "loading {rows} rows into bench.t in transactions of 1000 rows"
    ));
    db.execute(&format!(
        "CREATE DATABASE bench; CREATE TABLE bench.t {REFERENCE_DDL}"
    ))
    .await?;
    db.execute("FLUSH BINARY LOGS").await?;
    let binlog_file = current_binlog(&db).await?;
    let load = Instant::now();
    {
        let mut conn = db.conn().await?;
        let mut a = 1;
        while a <= rows {
            let b = (a + 999).min(rows);
            conn.query_drop(reference_insert("t", a, b)).await?;
            a = b + 1;
        }
    }
    db.execute("FLUSH BINARY LOGS").await?;
    let binlog_path = db.data_dir().join(&binlog_file);
    let binlog_bytes = std::fs::metadata(&binlog_path)
        .map_err(|e| format!("{}: {e}", binlog_path.display()))?
        .len();
    eprintln!(
        "   {rows} rows in {:.1} s; {binlog_file} holds {binlog_bytes} bytes",
        load.elapsed().as_secs_f64()
    );

    // ---- binlog catch-up ----
    log("binlog: mariadb-binlog --raw, raw decode, catch-up into the counting sink");
    let raw_dir = std::env::temp_dir().join(format!("cdc-bench-raw-{}", std::process::id()));
    std::fs::create_dir_all(&raw_dir)?;
    let mut wire_runs = Vec::new();
    let mut wire_error = None;
    let mut catchup_runs = Vec::new();
    let mut catchup_rss = Vec::new();
    for _ in 0..s.repeat {
        match binlog_tool {
            Some(tool) => match tools::raw_binlog(tool, port, &binlog_file, &raw_dir).await {
                Ok(d) => wire_runs.push(d),
                Err(e) => wire_error = Some(e),
            },
            None => wire_error = Some("neither mariadb-binlog nor mysqlbinlog is installed".into()),
        }
        let mut args = cx.phase("binlog-count", "t", Mode::Binlog, SinkKind::Count, rows);
        args.binlog_file = Some(binlog_file.clone());
        let o = child::counted(&args).await?;
        catchup_runs.push(o.elapsed);
        catchup_rss.extend(o.rss_kb);
    }
    let _ = std::fs::remove_dir_all(&raw_dir);
    let file_bytes = std::fs::read(&binlog_path)?;
    let spec = TableSpec::reference();
    let mut decode_runs = Vec::new();
    for _ in 0..s.repeat {
        let mut replay = BinlogReplay::new(&binlog_file, &[spec.bench_table()])?;
        let started = Instant::now();
        let decoded = replay.replay(&file_bytes)?;
        decode_runs.push(started.elapsed());
        if decoded != rows {
            return Err(format!("the raw decode found {decoded} changes, not {rows}").into());
        }
    }
    drop(file_bytes);
    let python_result = match &python {
        Ok(py) => {
            log("binlog: python-mysql-replication");
            py.decode(port, &binlog_file, s.python_rows.min(rows), 5699)
                .await
                .map(|(n, d)| (n, d, py.version.clone()))
        }
        Err(why) => Err(why.clone()),
    };
    log("binlog: catch-up into the Doris emulator");
    let mut args = cx.phase("binlog-doris", "t", Mode::Binlog, SinkKind::Doris, rows);
    args.binlog_file = Some(binlog_file.clone());
    let catchup_doris = child::into_doris(&args, &doris, "bench", "t").await?;
    doris.execute("DROP DATABASE bench")?;

    let wire = (!wire_runs.is_empty()).then(|| median(wire_runs));
    let catchup = median(catchup_runs);
    let raw_decode = median(decode_runs);
    let catchup_rss = catchup_rss.iter().max().copied();
    md.push_str(&format!(
        "### Binlog catch-up: {} row changes\n\n\
         {} inserts into the reference table, committed in transactions of 1000 rows, read from \
         the start of their binlog file ({:.1} MB). Times are the median of {} run(s) (Doris \
         and Python: one run). Ratios are time ratios, ours ÷ theirs: below 1 ours is faster; \
         python-mysql-replication's time is scaled to the same number of rows.\n\n",
        thousands(rows),
        thousands(rows),
        binlog_bytes as f64 / 1e6,
        s.repeat
    ));
    let mut t = Table::new(&[
        "measure",
        "rows",
        "time",
        "rows/s",
        "MB/s",
        "peak RSS",
        "vs. wire",
        "vs. raw decode",
        "vs. python-mysql-replication",
    ]);
    let py_time_for = |n: u64| -> Option<Duration> {
        python_result.as_ref().ok().map(|(pn, pd, _)| {
            // Same work per row: scale its time to `n` rows.
            Duration::from_secs_f64(pd.as_secs_f64() * n as f64 / (*pn).max(1) as f64)
        })
    };
    let vs =
        |ours: Duration, theirs: Option<Duration>| theirs.map_or("n/a".into(), |t| ratio(ours, t));
    match (wire, &wire_error) {
        (Some(w), _) => t.row(vec![
            "`mariadb-binlog --read-from-remote-server --raw` (wire limit)".into(),
            thousands(rows),
            secs(w),
            per_sec(rows, w),
            mb_per_sec(binlog_bytes, w),
            "n/a".into(),
            "1.00x".into(),
            vs(w, Some(raw_decode)),
            vs(w, py_time_for(rows)),
        ]),
        (None, e) => t.row(vec![
            format!(
                "`mariadb-binlog --raw`: not measured: {}",
                e.as_deref().unwrap_or("unknown")
            ),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]),
    }
    t.row(vec![
        "raw decode: the source's binlog reader over the file, one thread, no network, no runtime"
            .into(),
        thousands(rows),
        secs(raw_decode),
        per_sec(rows, raw_decode),
        mb_per_sec(binlog_bytes, raw_decode),
        "n/a".into(),
        vs(raw_decode, wire),
        "1.00x".into(),
        vs(raw_decode, py_time_for(rows)),
    ]);
    match &python_result {
        Ok((n, d, version)) => t.row(vec![
            format!(
                "python-mysql-replication {version} (decodes every row; first {} rows)",
                thousands(*n)
            ),
            thousands(*n),
            secs(*d),
            per_sec(*n, *d),
            "n/a".into(),
            "n/a".into(),
            "n/a".into(),
            "n/a".into(),
            "1.00x".into(),
        ]),
        Err(why) => t.row(vec![
            format!("python-mysql-replication: not measured: {why}"),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]),
    }
    t.row(vec![
        "**catch-up** → counting sink (source + runtime)".into(),
        thousands(rows),
        secs(catchup),
        per_sec(rows, catchup),
        mb_per_sec(binlog_bytes, catchup),
        rss(catchup_rss),
        vs(catchup, wire),
        vs(catchup, Some(raw_decode)),
        vs(catchup, py_time_for(rows)),
    ]);
    t.row(vec![
        "**catch-up** → Doris sink → emulator (rows visible)".into(),
        thousands(rows),
        secs(catchup_doris.elapsed),
        per_sec(rows, catchup_doris.elapsed),
        mb_per_sec(binlog_bytes, catchup_doris.elapsed),
        rss(catchup_doris.rss_kb),
        vs(catchup_doris.elapsed, wire),
        vs(catchup_doris.elapsed, Some(raw_decode)),
        vs(catchup_doris.elapsed, py_time_for(rows)),
    ]);
    md.push_str(&t.render());
    md.push('\n');
    let decode_rate = rows as f64 / raw_decode.as_secs_f64().max(1e-9);
    targets.push(Target {
        what: "binlog decode on one core".into(),
        goal: "≥ 1,000,000 rows/s".into(),
        measured: format!(
            "{} rows/s (raw decode, reference table)",
            thousands(decode_rate as u64)
        ),
        met: Some(decode_rate >= 1e6),
    });
    let catchup_vs_decode = catchup.as_secs_f64() / raw_decode.as_secs_f64().max(1e-9);
    targets.push(Target {
        what: "end-to-end catch-up vs. the raw decode".into(),
        goal: "within 2x".into(),
        measured: format!("{catchup_vs_decode:.2}x (counting sink)"),
        met: Some(catchup_vs_decode <= 2.0),
    });

    // ---- snapshots ----
    let mut snapshot_section = String::from(
        "### Snapshot\n\nFrom `scan.startup.mode: snapshot` until the sink has every row \
         (counting sink), or until every row is visible in the emulator (Doris sink), next to \
         `mariadb --quick -e 'SELECT * FROM ...' > /dev/null` (the server's own read). Times \
         are medians of the runs noted; ratios are time ratios, ours ÷ the raw SELECT.\n\n",
    );
    let mut st = Table::new(&[
        "table",
        "measure",
        "rows",
        "runs",
        "time",
        "rows/s",
        "peak RSS",
        "vs. raw SELECT",
    ]);
    log(&format!("snapshot of {rows} rows"));
    let (snap, snap_raw, _) = cx
        .snapshot(&mut st, "reference", "t", rows, s.repeat, true)
        .await?;
    let mut snapshot_goal = vec![(rows, snap, snap_raw)];

    if s.wide_rows > 0 {
        let wide = TableSpec::wide();
        let columns: Vec<String> = wide
            .columns
            .iter()
            .enumerate()
            .map(|(i, (name, kind))| {
                if i == 0 {
                    format!("{name} BIGINT PRIMARY KEY")
                } else {
                    format!("{name} {}", kind.sql_type())
                }
            })
            .collect();
        let values: Vec<String> = wide
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| {
                if i == 0 {
                    "seq".into()
                } else {
                    wide_expr(*kind, i)
                }
            })
            .collect();
        log(&format!(
            "loading {} rows into the 50-column table",
            s.wide_rows
        ));
        db.execute(&format!("CREATE TABLE bench.wide ({})", columns.join(", ")))
            .await?;
        let select = values.join(", ");
        load_quietly(&db, 1, s.wide_rows, 50_000, |a, b| {
            format!("INSERT INTO bench.wide SELECT {select} FROM bench.seq_{a}_to_{b}")
        })
        .await?;
        log(&format!("snapshot of {} wide rows", s.wide_rows));
        cx.snapshot(
            &mut st,
            "wide (50 columns)",
            "wide",
            s.wide_rows,
            s.repeat,
            false,
        )
        .await?;
    }

    let key_section = if s.key_rows > 0 {
        key_snapshots(&mut cx, &db, s.key_rows, s.repeat).await?
    } else {
        String::new()
    };

    // ---- latency ----
    log(&format!(
        "latency: {} changes/s for {} s (+{} s warm-up), at-least-once and exactly-once",
        s.latency_rate, s.latency_secs, s.warmup_secs
    ));
    let mut lt = Table::new(&[
        "sink mode",
        "commit → visible interval",
        "changes measured",
        "achieved rate",
        "p50",
        "p99",
        "max",
        "not delivered",
        "peak RSS",
    ]);
    let mut alo_p99 = None;
    for (label, table, two_phase) in [
        (
            "at-least-once (`sink.enable-2pc: false`): `sink.buffer-flush.interval`",
            "lat_alo",
            false,
        ),
        (
            "exactly-once (the default, 2PC): `checkpoint.interval`",
            "lat_2pc",
            true,
        ),
    ] {
        let mut args = cx.phase(
            &format!("latency-{table}"),
            table,
            Mode::Initial,
            SinkKind::Doris,
            0,
        );
        args.two_phase = two_phase;
        let l = latency::measure(
            &db,
            &doris,
            &args,
            table,
            s.latency_rate,
            s.latency_secs,
            s.warmup_secs,
        )
        .await?;
        if !two_phase {
            alo_p99 = Some(l.p99);
        }
        lt.row(vec![
            label.to_string(),
            format!("{} ms", s.flush_ms),
            thousands(l.measured),
            format!("{:.0}/s", l.achieved_rate),
            millis(l.p50),
            millis(l.p99),
            millis(l.max),
            thousands(l.missing),
            rss(l.rss_kb),
        ]);
    }
    let limit = Duration::from_millis(s.flush_ms + 200);
    targets.push(Target {
        what: "p99 commit → visible latency (at-least-once)".into(),
        goal: format!("< flush interval + 200 ms = {}", millis(limit)),
        measured: alo_p99.map_or("n/a".into(), millis),
        met: alo_p99.map(|p| p < limit),
    });

    // ---- the big snapshot ----
    let mut big_rss = None;
    if s.big_rows > rows {
        log(&format!("growing bench.t to {} rows", s.big_rows));
        let grow = Instant::now();
        load_quietly(&db, rows + 1, s.big_rows, 500_000, |a, b| {
            reference_insert("t", a, b)
        })
        .await?;
        eprintln!("   in {:.1} s", grow.elapsed().as_secs_f64());
        log(&format!("snapshot of {} rows", s.big_rows));
        let (big, big_raw, rss_kb) = cx
            .snapshot(&mut st, "reference", "t", s.big_rows, 1, false)
            .await?;
        snapshot_goal.push((s.big_rows, big, big_raw));
        big_rss = Some((s.big_rows, rss_kb));
    }
    for (n, ours, raw) in snapshot_goal {
        let ratio = raw.map(|r| ours.as_secs_f64() / r.as_secs_f64().max(1e-9));
        targets.push(Target {
            what: format!("snapshot of {} rows vs. the raw SELECT", thousands(n)),
            goal: "no slower (≤ 1.00x)".into(),
            measured: ratio.map_or("n/a".into(), |r| format!("{r:.2}x")),
            met: ratio.map(|r| r <= 1.0),
        });
    }
    match big_rss {
        Some((n, kb)) => targets.push(Target {
            what: format!("peak RSS, snapshot of {} rows", thousands(n)),
            goal: "< 300 MB".into(),
            measured: rss(kb),
            met: kb.map(|kb| rss_mb(kb) < 300.0),
        }),
        None => targets.push(Target {
            what: "peak RSS, snapshot of 10,000,000 rows".into(),
            goal: "< 300 MB".into(),
            measured: "not run (--big-rows)".into(),
            met: None,
        }),
    }
    snapshot_section.push_str(&st.render());

    // ---- assemble ----
    let mut out = String::new();
    out.push_str(&format!(
        "Server: MariaDB {version} (the kit's private server: `innodb_buffer_pool_size=128M`, \
         `innodb_flush_log_at_trx_commit=2`, `sync_binlog=0`). Target: the Doris emulator of \
         `cdc-testkit`, in the benchmark's process. Each measured pipeline runs in a child \
         process of its own, so its peak RSS (`VmHWM`) is the pipeline's alone. Whole run: \
         {:.0} s.\n\n",
        wall.elapsed().as_secs_f64()
    ));
    out.push_str("### Targets\n\n");
    let mut all_targets = Vec::new();
    if let Some(dir) = &s.criterion {
        match read_criterion(dir) {
            Ok(results) => {
                if let Some(r) = results.iter().find(|r| r.id == "binlog_decode/reference") {
                    all_targets.push(Target {
                        what: "binlog row decode, micro benchmark (one core)".into(),
                        goal: "≥ 1,000,000 rows/s".into(),
                        measured: r.elements_per_sec.map_or("n/a".into(), |v| {
                            format!("{} rows/s (reference table rows)", thousands(v as u64))
                        }),
                        met: r.elements_per_sec.map(|v| v >= 1e6),
                    });
                }
                all_targets.append(&mut targets);
                out.push_str(&targets_table(&all_targets));
                out.push_str("\n### Micro benchmarks (criterion, one thread, medians)\n\n");
                out.push_str(&micro_tables(&results));
            }
            Err(e) => {
                out.push_str(&targets_table(&targets));
                out.push_str(&format!("\n### Micro benchmarks\n\nnot measured: {e}\n\n"));
            }
        }
    } else {
        out.push_str(&targets_table(&targets));
        out.push('\n');
    }
    out.push_str(&md);
    out.push_str(&snapshot_section);
    if !key_section.is_empty() {
        out.push('\n');
        out.push_str(&key_section);
    }
    out.push_str(&format!(
        "\n### Latency: commit in MariaDB → visible in the target\n\n{} changes/s \
         (single-row autocommit inserts) for {} s after {} s of warm-up, MariaDB → Doris sink \
         → emulator. See the method below.\n\n",
        s.latency_rate, s.latency_secs, s.warmup_secs
    ));
    out.push_str(&lt.render());
    Ok(out)
}
