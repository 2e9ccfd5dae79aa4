#!/usr/bin/env bash
# Runs the VS Code extension's whole suite: type check, lint, unit tests, end-to-end tests
# against the real sidecar and fake-anthropic, and two offline packages (the universal one and
# one with SWITCHBOARD_BIN bundled) that must each load and start their sidecar without
# node_modules. Uses SWITCHBOARD_BIN and FAKE_ANTHROPIC_BIN when set, else
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

# A packaged extension must work with nothing but itself: unpack the .vsix somewhere without
# node_modules, keeping file modes as VS Code's installer does, load out/extension.js with a
# stand-in for the `vscode` module, activate it in a scratch HOME and check which sidecar it
# starts: the bundled bin/switchboard when the package carries one (and then that it runs and
# answers), else `switchboard` from PATH.
check_package() {
  local vsix=$1 bundled=$2 scratch status
  scratch=$(mktemp -d)
  python3 - "$vsix" "$scratch" "$bundled" <<'PY' &&
import os, sys, zipfile
vsix, dest, bundled = sys.argv[1], sys.argv[2], sys.argv[3] == "yes"
with zipfile.ZipFile(vsix) as archive:
    names = archive.namelist()
    binary = "extension/bin/switchboard"
    if bundled != (binary in names):
        sys.exit(f"{vsix}: {binary} {'missing' if bundled else 'present'}")
    if bundled:
        mode = archive.getinfo(binary).external_attr >> 16
        if mode & 0o111 == 0:
            sys.exit(f"{vsix}: {binary} is not executable (mode {oct(mode)})")
        if 'TargetPlatform="' not in archive.read("extension.vsixmanifest").decode():
            sys.exit(f"{vsix}: a package with a native sidecar names no target platform")
    for info in archive.infolist():
        path = archive.extract(info, dest)
        mode = info.external_attr >> 16
        if mode:
            os.chmod(path, mode & 0o777)
PY
    (cd "$scratch/extension" && HOME="$scratch/home" SWITCHBOARD_HOME="$scratch/vault" \
      PATH=/usr/bin:/bin BUNDLED="$bundled" node -e '
      const path = require("path");
      const Module = require("module");
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        return request === "vscode" ? "vscode" : resolve.call(this, request, ...rest);
      };
      const lines = [];
      const item = {};
      const none = { dispose() {} };
      const vscode = {
        StatusBarAlignment: { Left: 1, Right: 2 },
        ProgressLocation: { Window: 10 },
        ThemeColor: class { constructor(id) { this.id = id; } },
        window: {
          createOutputChannel: () => ({ appendLine: (line) => lines.push(line), show() {}, dispose() {} }),
          createStatusBarItem: () => Object.assign(item, { show() {}, dispose() {} }),
        },
        commands: { registerCommand: () => none },
        workspace: { getConfiguration: () => ({ get: () => undefined }), onDidChangeConfiguration: () => none },
        extensions: { getExtension: () => undefined },
      };
      require.cache.vscode = { id: "vscode", filename: "vscode", loaded: true, exports: vscode };
      const extension = require("./out/extension.js");
      const fail = (why) => {
        console.error(why);
        console.error(lines.join("\n"));
        process.exit(1);
      };
      for (const name of ["activate", "deactivate"]) {
        if (typeof extension[name] !== "function") fail(`the packaged extension exports no ${name}()`);
      }
      const bundled = process.env.BUNDLED === "yes";
      const command = bundled ? path.join(process.cwd(), "bin", "switchboard") : "switchboard";
      // With the bundled sidecar the empty scratch HOME reads as "no login"; without one, PATH
      // here holds no switchboard, so the item says the sidecar is down.
      const settled = bundled ? /no login/ : /debug-disconnect/;
      const context = { subscriptions: [], extensionPath: process.cwd() };
      extension.activate(context);
      const deadline = Date.now() + 20000;
      const wait = () => {
        if (!settled.test(item.text ?? "")) {
          if (Date.now() > deadline) fail(`the status bar says ${JSON.stringify(item.text)}`);
          return setTimeout(wait, 50);
        }
        if (!lines.includes(`starting ${command} serve --framing lsp`)) fail(`${command} was not started`);
        Promise.resolve(extension.deactivate()).then(() => {
          for (const subscription of context.subscriptions) subscription.dispose();
          console.log(`packaged extension loads on its own and starts ${bundled ? "its bundled" : "the PATH"} sidecar`);
        });
      };
      wait();
    ')
  status=$?
  rm -rf "$scratch"
  return $status
}

step "tsc --noEmit" npx tsc --noEmit
step "eslint" npx eslint .
step "unit tests" npx vitest run --config vitest.config.mts
step "end-to-end tests" npx vitest run --config vitest.e2e.config.mts
step "vsce package" scripts/package.sh --out switchboard.vsix
step "package loads" check_package switchboard.vsix no
step "vsce package, sidecar bundled" scripts/package.sh --bundle "$SWITCHBOARD_BIN" \
  --out switchboard-bundled.vsix
step "bundled package loads" check_package switchboard-bundled.vsix yes

echo
echo "steps: $passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
  exit 1
fi
