#!/usr/bin/env bash
# Runs the end-to-end benchmarks and writes docs/performance.md (machine, versions, figures,
# ratios to the server's own limits). Usage: scripts/bench.sh [ROWS] (default 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
cargo build --release -q -p cdc-bench
table=$(./target/release/cdc-bench "$rows")
{
  echo "# Performance"
  echo
  echo "Measured by \`scripts/bench.sh $rows\` on $(date -u +%Y-%m-%d): $(nproc) cores,"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(mariadbd --version 2>/dev/null | awk '{print $3}' || echo 'MariaDB ?'),"
  echo "$(rustc --version). The source runs into a counting sink (no target), so the figures are the"
  echo "source and the runtime alone; each is shown next to the server's own limit measured in the same run."
  echo
  echo "$table"
  echo
  echo "Reference table: BIGINT pk, INT, VARCHAR(32), DECIMAL(12,2), DATETIME(3), DOUBLE."
} > docs/performance.md
cat docs/performance.md
