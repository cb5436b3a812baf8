#!/usr/bin/env bash
# The project's test command: formatting, lints, every test (with a real MariaDB), docs,
# and a short bounded fuzzing run of every cargo-fuzz target (CDC_FUZZ_SECONDS, default 15;
# 0 skips it for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."

have_mariadb() {
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || [ -x /usr/local/sbin/mariadbd ]
}
if ! have_mariadb || ! command -v mariadb-install-db >/dev/null 2>&1; then
  echo "== installing mariadb-server (the integration tests start private MariaDB servers)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mariadb-server >/dev/null
fi

# A missing MariaDB fails the tests instead of skipping them.
export CDC_TEST_REQUIRE_MARIADB=1

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace --no-fail-fast
echo "== cargo doc (cdc-api, warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p cdc-api -p cdc-runtime -p cdc-testkit
fuzz_seconds="${CDC_FUZZ_SECONDS:-15}"
if [ "$fuzz_seconds" != "0" ]; then
  echo "== fuzzing (${fuzz_seconds} s per target)"
  ./scripts/fuzz.sh "$fuzz_seconds"
fi
echo "== all checks passed"
