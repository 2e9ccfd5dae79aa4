#!/usr/bin/env bash
# Runs every test Switchboard has: formatting and lints, the Rust workspace (unit tests, the
# end-to-end tests against the fake service, the interop tests with the real Claude Code and
# the drift soak), the Neovim plugin's headless suite and the VS Code extension's suites.
# Installs what is missing first. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/install-test-deps.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked

export SWITCHBOARD_BIN="$root/target/debug/switchboard"
export FAKE_ANTHROPIC_BIN="$root/target/debug/fake-anthropic"
export FAKE_CLAUDE_BIN="$root/target/debug/fake-claude"
export CLAUDE_NATIVE_BIN="$root/.tools/claude/native/package/claude"
export CLAUDE_LEGACY_JS="$root/.tools/claude/legacy/package/cli.js"

# The soak runs on its own with its output shown, so that the CI log carries its counts
# (SWITCHBOARD_SOAK_SECS, default 6, sets how long it runs).
cargo test --workspace --locked -- --skip soak_no_lineage_lost_and_no_token_spent_twice
cargo test -p switchboard-tests --test soak --locked -- --nocapture

for editor in nvim vscode; do
  if [ -f "editors/$editor/scripts/test.sh" ]; then
    echo "== editors/$editor"
    bash "editors/$editor/scripts/test.sh"
  fi
done
echo "all suites passed"
