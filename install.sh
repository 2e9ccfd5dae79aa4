#!/usr/bin/env bash
# Installs the `switchboard` binary into Cargo's bin folder and shows it working: on your real
# Claude Code login when this machine has one (read only: it runs `switchboard list`), else as
# a demo in a scratch folder against a local stand-in for Anthropic's login service.
set -euo pipefail
cd "$(dirname "$0")"

echo "== building and installing switchboard (cargo install --path server)"
cargo install --locked --quiet --path server
bin="${CARGO_HOME:-$HOME/.cargo}/bin/switchboard"
"$bin" --version

# Anything managed, or any login in Claude Code, means a real setup: show it, change nothing.
if "$bin" --json list 2>/dev/null | grep -q -e '"alias"' -e '"unmanaged":{'; then
  echo
  "$bin" list
  echo
  echo "Add the login Claude Code has now with \`switchboard add NAME\`; see README.md."
  exit 0
fi

echo
echo "No Claude Code login here, so here is a demo in a scratch folder."
exec bash scripts/demo.sh "$bin"
