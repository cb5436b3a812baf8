#!/usr/bin/env bash
# The soak run: the real `cdc` binary replicating a private MariaDB into the Doris emulator
# for MINUTES (default 20) under a steady mixed workload with DDL and injected faults
# (kill -9, MariaDB restart, 5xx, resets, publish timeouts, slow loads, BEs down), then
# checks target = source, no pre-committed transaction left and flat memory, and writes the
# report to docs/soak.md. Not part of CI (it takes tens of minutes).
# Usage: scripts/soak.sh [MINUTES] [SEED] [exactly-once|at-least-once]
# (the delivery mode, default exactly-once; at-least-once runs sink.enable.batch-mode: true)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-20}"
export SOAK_MINUTES="$minutes"
if [ -n "${2:-}" ]; then export SOAK_SEED="$2"; fi
case "${3:-exactly-once}" in
  exactly-once) test_name=soak; out=docs/soak.md; mode="with two-phase commit (exactly-once, the default)" ;;
  at-least-once) test_name=soak_at_least_once; out=docs/soak-at-least-once.md; mode="in at-least-once batch mode (keyless rows may repeat after kill -9, never go missing)" ;;
  *) echo "soak: the delivery mode is exactly-once or at-least-once, not '$3'" >&2; exit 2 ;;
esac
export CDC_TEST_REQUIRE_MARIADB=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "soak: $minutes minutes; building..." >&2
if ! cargo test -p cdc-cli --test soak -- --nocapture --exact "$test_name" 2>&1 | tee "$log"; then
  echo "soak: FAILED (see the output above)" >&2
  exit 1
fi
report=$(sed -n '/^SOAK REPORT BEGIN$/,/^SOAK REPORT END$/p' "$log" | sed '1d;$d')
{
  echo "# Soak run"
  echo
  echo "\`scripts/soak.sh $minutes ${2:-\"\"} ${3:-exactly-once}\` on $(date -u +%Y-%m-%d): $(nproc) cores,"
  echo "$(mariadbd --version 2>/dev/null | awk '{print $3}' || echo 'MariaDB ?'), $(rustc --version), debug build."
  echo "The real \`cdc\` binary replicates a private MariaDB (three tables: a keyed one with"
  echo "inserts/updates/deletes, a keyless append-only one, an upserted one that gains columns)"
  echo "into the Doris emulator $mode, while faults are injected every 40-90 s."
  echo "At the end the target must equal the source row for row, no pre-committed transaction"
  echo "may be left, and the peak memory of the last quarter must not exceed the second"
  echo "quarter's by more than half (+20 MB)."
  echo
  echo "$report"
} > "$out"
cat docs/soak.md
