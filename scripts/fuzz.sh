#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of what reads outside input: binlog
# events and rows, DDL, pipeline YAML, Doris/StarRocks answers. See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 20 s, every target)
#
# Installs cargo-fuzz when missing, builds every target, seeds the corpora, runs each
# target for the given time (one after another) and fails if any input panics, takes
# longer than 10 s, or makes the process grow past 2 GiB; it prints the reproducer.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

seconds="${1:-20}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...] (seconds: a positive integer)" >&2
  exit 2
fi
shift $(($# > 0 ? 1 : 0))
all_targets=(binlog_event binlog_rows ddl pipeline_yaml stream_load_response)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=("${all_targets[@]}"); fi
for t in "${targets[@]}"; do
  if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
    echo "no fuzz target '$t'; targets: ${all_targets[*]}" >&2
    exit 2
  fi
done

# libFuzzer is C++, built by libfuzzer-sys with the system compiler.
if ! command -v c++ >/dev/null 2>&1; then
  echo "== installing g++ (libFuzzer is compiled from C++)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq g++ >/dev/null
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version '^0.13'
fi

# cargo-fuzz needs unstable compiler flags: a nightly toolchain when there is one, else
# the stable one with RUSTC_BOOTSTRAP=1 (FUZZ_TOOLCHAIN=stable|nightly chooses). No
# sanitizer: the project's code forbids `unsafe`, and what is looked for (panics, hangs,
# memory growth) needs none; it also keeps the build the same on both toolchains.
toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
  toolchain=stable
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then toolchain=nightly; fi
fi
if [ "$toolchain" = nightly ]; then
  fuzz=(cargo +nightly fuzz)
  host="$(rustup run nightly rustc -vV | sed -n 's/^host: //p')"
else
  # The default toolchain (stable here).
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
  host="$(rustc -vV | sed -n 's/^host: //p')"
fi

# The fuzz crate builds into its own fuzz/target (the binaries are run from there below),
# whatever target directory the caller set for the main workspace.
unset CARGO_TARGET_DIR

# The very dependency versions the project is tested with (cargo adds libfuzzer-sys).
cp Cargo.lock fuzz/Cargo.lock

echo "== building the fuzz targets (${fuzz[*]}, first build takes several minutes)"
build_start=$SECONDS
# Optimized, with debug assertions and overflow checks in the project's crates only (set in
# fuzz/Cargo.toml; `-a` would switch them on in every dependency too). 16 codegen units
# build much faster than cargo-fuzz's default of 1 and cost little speed.
build=(build -O -s none --codegen-units 16)
if [ ${#targets[@]} -eq 1 ]; then build+=("${targets[0]}"); fi
"${fuzz[@]}" "${build[@]}"
echo "== built in $((SECONDS - build_start)) s"
bin_dir="fuzz/target/$host/release"

# Where the real binlog files are (read in place; never copied into the repository).
fixtures=""
for dir in "${CDC_MYSQL_BINLOG_FIXTURES:-}" "$root/../shared/fixtures/mysql-binlogs"; do
  if [ -n "$dir" ] && [ -d "$dir" ]; then fixtures="$dir"; break; fi
done

failed=()
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  # Read-only seed directories after the corpus (new inputs go to the first one only).
  seeds=("fuzz/seeds/$t")
  if [ -d "fuzz/regressions/$t" ]; then seeds+=("fuzz/regressions/$t"); fi
  case "$t" in
    binlog_event)
      if [ -n "$fixtures" ]; then
        seeds+=("$fixtures")
      else
        echo "   (no binlog fixtures found: binlog_event starts from the committed seeds only)"
      fi
      ;;
    pipeline_yaml)
      mkdir -p fuzz/corpus/.examples
      cp examples/*.yaml fuzz/corpus/.examples/
      seeds+=(fuzz/corpus/.examples)
      ;;
  esac
  dict=()
  if [ -f "fuzz/dicts/$t.dict" ]; then dict=("-dict=fuzz/dicts/$t.dict"); fi
  log="$artifacts/last-run.log"
  echo "== fuzzing $t for ${seconds} s"
  status=0
  "$bin_dir/$t" "$corpus" "${seeds[@]}" "${dict[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  if [ "$status" -eq 0 ]; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    echo "   ok: ${runs:-?} inputs, corpus $(find "$corpus" -type f | wc -l) files"
  else
    failed+=("$t")
    echo "   FAILED (libFuzzer exit $status); from $log:"
    # From the panic message (or libFuzzer's report) on, without the frames of the
    # standard library, the registry's crates and libFuzzer itself.
    sed -n '/panicked at\|ERROR: libFuzzer\|ParseDictionaryFile\|ALARM/,$p' "$log" |
      grep -v '^#[0-9]\|^ *at /rustc/\|^ *at .*/\.cargo/registry/\|: _ZN\|__libc_start\|: _start$\|^ *[0-9]*: \(std\|core\|alloc\)::\|__rustc::' |
      head -n 60 | sed 's/^/   | /' || true
    reproducer="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    if [ -n "$reproducer" ]; then
      echo "   reproducer: $reproducer"
      echo "   replay:     $bin_dir/$t $reproducer"
      echo "               (or: ${fuzz[*]} run -O -s none --codegen-units 16 $t $reproducer)"
    fi
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "== fuzzing found problems in: ${failed[*]}"
  exit 1
fi
echo "== fuzzing: no crash, hang or memory blow-up in ${targets[*]}"
