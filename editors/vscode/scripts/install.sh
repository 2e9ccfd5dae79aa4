#!/usr/bin/env bash
# Installs what the VS Code extension's build and tests need into editors/vscode/node_modules,
# exactly as package-lock.json pins it. Needs Node 20 or newer and npm. Idempotent: skips the
# install when node_modules already matches the lock file.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm are needed (Node 20 or newer)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "Node 20 or newer is needed, found $(node --version)" >&2
  exit 1
fi

stamp=node_modules/.switchboard-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "node_modules already matches package-lock.json"
  exit 0
fi
# No install scripts: esbuild finds its platform binary through its optional dependency at run
# time, and vsce-sign's binary is only for signing, which packaging here never does. Skipping
# them keeps the install the same under every npm version and away from any download.
npm ci --no-audit --no-fund --ignore-scripts
echo "$want" >"$stamp"
