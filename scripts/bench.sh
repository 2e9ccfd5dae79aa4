#!/usr/bin/env bash
# Runs Switchboard's benchmarks against the fake Anthropic service on 127.0.0.1 and writes
# the report to target/bench/report.md (and to stdout). Release builds only: the numbers of a
# debug build say nothing about what people wait for. See docs/benchmarks.md.
#
#   bash scripts/bench.sh                  every section
#   bash scripts/bench.sh switch latency   only these (list, switch, requests, cli, latency)
#   bash scripts/bench.sh --quick          a few iterations each: checks the benchmarks run
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if ! command -v hyperfine >/dev/null 2>&1; then
  echo "installing hyperfine (Debian package) for the CLI timings" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get install -y hyperfine >&2 || { apt-get update >&2 && apt-get install -y hyperfine >&2; }
  else
    sudo apt-get install -y hyperfine >&2
  fi
fi

cargo build --release --locked -p switchboard --bin switchboard
cargo bench --locked -p switchboard-tests --bench switchboard --no-run

out="$root/target/bench"
mkdir -p "$out"
# Scratch worlds go on the same disk as the build, not a RAM-backed /tmp, so that the fsyncs
# every switch makes cost what they cost on a real disk.
export TMPDIR="$out/tmp"
mkdir -p "$TMPDIR"
export SWITCHBOARD_BIN="$root/target/release/switchboard"

{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
    "$(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "toolchain: $(rustc --version), $(hyperfine --version)"
  echo "scratch folder: $TMPDIR on $(df --output=fstype "$TMPDIR" | tail -1)"
  echo
  cargo bench --locked -p switchboard-tests --bench switchboard -- "$@"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/report.md"
echo "report written to target/bench/report.md" >&2
