#!/usr/bin/env bash
# One command from clone to rows arriving: finds or installs MariaDB, builds `cdc`, and runs
# `cdc quickstart` (private MariaDB + Doris emulator + examples/mariadb-to-doris.yaml + live
# changes + the "in sync" verdict). Leaves nothing running; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  echo "== MariaDB is not installed; installing mariadb-server with apt"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mariadb-server >/dev/null
fi
cargo build --release -q -p cdc-cli
RUST_LOG="${RUST_LOG:-warn}" exec ./target/release/cdc quickstart
