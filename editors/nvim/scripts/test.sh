#!/usr/bin/env bash
# Runs the Neovim plugin's whole test suite in a real headless Neovim against the real
# sidecar and the real fake-anthropic. Uses SWITCHBOARD_BIN and FAKE_ANTHROPIC_BIN when
# set, else builds target/debug/{switchboard,fake-anthropic}. Extra arguments: a filter on
# test names. Ends with "N passed, N failed" and exits non-zero when anything failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo=$(cd "$here/../.." && pwd)
nvim=${NVIM_BIN:-$repo/.tools/nvim-venv/bin/nvim}

if [ ! -x "$nvim" ]; then
  "$here/scripts/install.sh"
fi

if [ -z "${SWITCHBOARD_BIN:-}" ] || [ -z "${FAKE_ANTHROPIC_BIN:-}" ]; then
  sb=${SWITCHBOARD_BIN:-$repo/target/debug/switchboard}
  fake=${FAKE_ANTHROPIC_BIN:-$repo/target/debug/fake-anthropic}
  if [ ! -x "$sb" ] || [ ! -x "$fake" ]; then
    (cd "$repo" && cargo build --quiet -p switchboard -p switchboard-tests)
  fi
  export SWITCHBOARD_BIN=$sb FAKE_ANTHROPIC_BIN=$fake
fi

# The fake service lives as long as this script, whatever happens to the test runner.
scratch=$(mktemp -d)
"$FAKE_ANTHROPIC_BIN" --listen 127.0.0.1:0 >"$scratch/fake.out" 2>"$scratch/fake.log" &
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 200); do
  if grep -q '^listening on ' "$scratch/fake.out" 2>/dev/null; then break; fi
  sleep 0.1
done
url=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$scratch/fake.out" | head -1)
if [ -z "$url" ]; then
  echo "fake-anthropic did not start:" >&2
  cat "$scratch/fake.log" >&2
  exit 1
fi
export FAKE_ANTHROPIC_URL=$url

cd "$here"
status=0
"$nvim" -u NONE -i NONE --headless -l tests/run.lua "$@" || status=$?
exit "$status"
