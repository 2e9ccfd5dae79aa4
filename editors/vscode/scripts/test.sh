#!/usr/bin/env bash
# Runs the VS Code extension's whole suite: type check, lint, unit tests, end-to-end tests
# against the real sidecar and fake-anthropic, and an offline `vsce package` whose bundle must
# load without node_modules. Uses SWITCHBOARD_BIN and FAKE_ANTHROPIC_BIN when set, else
# <repo>/target/debug/{switchboard,fake-anthropic}, building them when missing. Every step
# runs; the script exits non-zero when any failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$here"

"$here/scripts/install.sh" || exit 1

if [ -z "${SWITCHBOARD_BIN:-}" ] || [ -z "${FAKE_ANTHROPIC_BIN:-}" ]; then
  sb=${SWITCHBOARD_BIN:-$repo/target/debug/switchboard}
  fake=${FAKE_ANTHROPIC_BIN:-$repo/target/debug/fake-anthropic}
  if [ ! -x "$sb" ] || [ ! -x "$fake" ]; then
    (cd "$repo" && cargo build --quiet -p switchboard -p switchboard-tests) || exit 1
  fi
  export SWITCHBOARD_BIN=$sb FAKE_ANTHROPIC_BIN=$fake
fi

passed=0
failed=0
failures=()
step() {
  local name=$1
  shift
  echo "== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

# The packaged bundle must load with nothing but itself: unpack the .vsix somewhere without
# node_modules and require out/extension.js with a stand-in for the `vscode` module.
check_package() {
  local scratch
  scratch=$(mktemp -d)
  python3 -m zipfile -e switchboard.vsix "$scratch" &&
    (cd "$scratch/extension" && node -e '
      const Module = require("module");
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        return request === "vscode" ? "vscode" : resolve.call(this, request, ...rest);
      };
      require.cache.vscode = { id: "vscode", filename: "vscode", loaded: true, exports: {} };
      const extension = require("./out/extension.js");
      for (const name of ["activate", "deactivate"]) {
        if (typeof extension[name] !== "function") {
          console.error(`the packaged extension exports no ${name}()`);
          process.exit(1);
        }
      }
      console.log("packaged extension loads on its own");
    ')
  local status=$?
  rm -rf "$scratch"
  return $status
}

step "tsc --noEmit" npx tsc --noEmit
step "eslint" npx eslint .
step "unit tests" npx vitest run --config vitest.config.mts
step "end-to-end tests" npx vitest run --config vitest.e2e.config.mts
step "vsce package" npx vsce package --no-dependencies --out switchboard.vsix
step "package loads" check_package

echo
echo "steps: $passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
  exit 1
fi
