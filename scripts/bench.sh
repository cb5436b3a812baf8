#!/usr/bin/env bash
# Runs every benchmark and writes docs/performance.md: machine, versions, every figure,
# every ratio, and which of the targets of issue #8 are met.
#
#   scripts/bench.sh [ROWS [BIG_ROWS]]   defaults 1000000 and 10000000; about 7 minutes on
#                                        2 cores once built: 2-3 for the micro benchmarks,
#                                        3-4 for the end-to-end run (the 10M-row table alone
#                                        about a minute)
#   scripts/bench.sh --quick             smoke sizes, about 1 minute once built; writes
#                                        target/performance-quick.md, leaves docs/ alone
#
# Steps: the criterion micro benchmarks (`cargo bench -p cdc-bench --benches`: row
# decoding, Stream Load encoding, transform), python-mysql-replication into a venv under
# target/ (reported as "not measured" when pip cannot install it), then the end-to-end run
# (`cdc-bench`), which starts its own MariaDB and Doris emulator. Benchmarks never fail on
# time: a missed target is a line in the report. CI only compiles the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
rows="${1:-1000000}"
big_rows="${2:-10000000}"
started=$(date +%s)

echo "== building (release)" >&2
cargo build --release -q -p cdc-bench

echo "== python-mysql-replication" >&2
venv=target/bench-venv
python_args=()
why=""
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import pymysqlreplication" 2>/dev/null; then
  :
elif ! command -v python3 >/dev/null 2>&1; then
  why="python3 is not installed"
elif ! python3 -m venv "$venv" >/dev/null 2>&1; then
  why="python3 cannot create a venv (install python3-venv)"
elif ! "$venv/bin/pip" install -q mysql-replication >&2; then
  why="pip install mysql-replication failed (no access to PyPI?)"
fi
if [ -z "$why" ]; then
  python_args=(--python "$venv/bin/python")
else
  echo "   not measured: $why" >&2
  python_args=(--python-missing "$why")
fi

echo "== micro benchmarks (criterion)" >&2
export CRITERION_HOME="$PWD/target/bench-criterion"
rm -rf "$CRITERION_HOME"
criterion_args=()
if [ "$quick" = 1 ]; then
  criterion_args=(--warm-up-time 0.1 --measurement-time 0.3 --sample-size 10)
fi
cargo bench -q -p cdc-bench --benches -- "${criterion_args[@]}" >&2

echo "== end to end" >&2
bench_args=("$rows" --big-rows "$big_rows" --criterion "$CRITERION_HOME" "${python_args[@]}")
if [ "$quick" = 1 ]; then
  bench_args=(--quick --criterion "$CRITERION_HOME" "${python_args[@]}")
fi
figures=$(./target/release/cdc-bench "${bench_args[@]}")
minutes=$(( ($(date +%s) - started + 30) / 60 ))

mem_gb=$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs || true)
os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -sr)
client=$( (mariadb --version || mysql --version) 2>/dev/null | head -1 | tr -s ' ' || echo "none")
criterion=$(awk '/^name = "criterion"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

if [ "$quick" = 1 ]; then
  out=target/performance-quick.md
else
  out=docs/performance.md
fi
{
  echo "# Performance"
  echo
  echo "Measured by \`scripts/bench.sh $([ "$quick" = 1 ] && echo "--quick" || echo "$rows $big_rows")\` on $(date -u +%Y-%m-%d), in $minutes minutes"
  echo "including the build. Machine: $(nproc) cores ($cpu), $mem_gb GB RAM, $os."
  echo "Toolchain: $(rustc --version), criterion $criterion. Client tools: $client."
  echo "The machine is shared: MariaDB, the Doris emulator and the measured pipeline run on"
  echo "the same cores (and other builds may have been running), so absolute figures move"
  echo "between runs; the ratios to the references, measured in the same run, hold better."
  echo "Rerun \`scripts/bench.sh\` on a quiet machine for clean figures."
  echo
  echo "$figures"
  echo
  cat <<'EOF'
## How it is measured

**Micro benchmarks** (`crates/cdc-bench/benches/`, criterion, one thread; 0.5 s warm-up,
2 s of samples, the median time per iteration):

* `binlog_decode`: the rows parts of WRITE_ROWS events (UPDATE_ROWS for `reference_update`:
  two images per change), split at 8 KiB as MariaDB splits them, through the source's own
  row decoder into cdc-api `DataChange` events, 4096 rows per iteration. The bytes are
  written in MySQL's binary row format by `crates/cdc-bench/src/rowgen.rs` (its tests decode
  them with the source's decoder and check the values): `reference` is the reference
  table; `ints` TINYINT..BIGINT UNSIGNED; `decimals` DECIMAL(12,2), (18,4), (38,10), (65,30);
  `strings` utf8mb4 VARCHAR(32), VARCHAR(255), CHAR(10), TEXT; `temporal` DATE, TIME,
  DATETIME(0), DATETIME(6), TIMESTAMP(3); `json_text` MariaDB's JSON (text);
  `json_binary` MySQL 8's binary JSON; `blobs` BLOB and VARBINARY; `wide` the 50-column table.
* `stream_load`: those rows (decoded once) through the Doris sink's encoder (JSON lines
  with `__DORIS_DELETE_SIGN__`) and the StarRocks sink's (a JSON array with `__op`) into a
  reused buffer, as the sinks do; `/rows` gives rows/s, `/bytes` MB/s of body.
* `transform`: 1024-row batches of reference-table inserts through the pipeline's
  `transform` stage: `*` only, computed columns (UPPER, arithmetic on DECIMAL, CONCAT with
  CAST), a filter (comparison and LIKE), projection with DATE_FORMAT and metadata columns
  plus a filter.

**End to end** (`cdc-bench`): a private MariaDB (`cdc_testkit::MariaDb`) and the Doris
emulator (`cdc_testkit::DorisEmulator`, in the benchmark's process). Every measured
pipeline (`cdc_runtime::Pipeline`, MySQL source, counting sink or Doris sink) runs in a
child process, started fresh for each run, with the `cdc` binary's allocator (mimalloc);
its time runs from starting that process to the
end condition, as the references' times run from starting the client to its exit:

* counting sink: until the sink has seen every change (source and runtime alone);
* Doris sink: until every row is visible in the emulator (read from its load log), with
  `sink.buffer-flush.interval: 1s` at-least-once loads of up to 50,000 rows and
  `checkpoint.interval: 1s` (at-least-once makes snapshot rows visible at checkpoints);
* binlog catch-up: the reference table's rows were inserted in transactions of 1000 rows
  into a binlog file of their own; the pipeline starts at the beginning of that file
  (`scan.startup.mode: specific-offset`). References: `mariadb-binlog
  --read-from-remote-server --raw` of the same file (the server's wire, undecoded); the
  **raw decode**: the source's own binlog reader (event parsing, checksums, table maps, row
  decoding into batches of events) fed the file's bytes on one thread, without network or
  runtime; python-mysql-replication reading the same file and materialising every row
  (its time scaled to the row count when it read fewer rows);
* snapshot: `scan.startup.mode: snapshot` next to `mariadb --quick -e 'SELECT * FROM ...'
  > /dev/null`. The 50-column table cycles INT, VARCHAR(32), DECIMAL(12,2), DATETIME(3),
  DOUBLE, BIGINT, DATE after its BIGINT key. The big snapshot is the reference table grown
  to BIG_ROWS rows (the extra rows are not written to the binlog);
* latency: with the pipeline streaming the binlog, one connection inserts single-row
  autocommit transactions at a fixed rate (row `i` due at `start + i / rate`) and records
  when each COMMIT is acknowledged; a poller reads the emulator's load log every
  millisecond and records when the count of visible rows grows. One connection commits in
  id order, so the visible rows are always a prefix: row `i` is visible at the first poll
  showing more than `i` rows, and its latency is that instant minus its commit
  acknowledgement (errs high by about the poll interval). The first seconds are warm-up,
  left out. At-least-once (`sink.enable-2pc: false`) runs with
  `sink.buffer-flush.interval`; exactly-once (the default) makes rows visible at each
  `checkpoint.interval`, set to the same value. The default `checkpoint.interval` is 10 s,
  so with default options rows become visible within about 10 s (p99 = the interval plus
  one load, as the 1 s runs show); docs/semantics.md says why;
* the Doris figures include the emulator's own work (HTTP, JSON parsing, checking every
  value, storing the rows) on the same two cores: they bound what the sink does against a
  real Doris from below, and the gap to the counting sink is mostly the emulator;
* peak RSS: `VmHWM` of the child process, read after its pipeline stopped: the pipeline
  alone (runtime, connections, buffers), without the MariaDB server and the emulator.
EOF
} > "$out"
cat "$out"
echo "== wrote $out" >&2
