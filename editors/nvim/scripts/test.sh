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

cd "$here"
exec "$nvim" -u NONE -i NONE --headless -l tests/run.lua "$@"
