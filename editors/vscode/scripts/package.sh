#!/usr/bin/env bash
# Builds the extension's .vsix offline (vsce package --no-dependencies: the bundle in
# out/extension.js already holds every dependency).
#
#   scripts/package.sh [--out FILE]                  the universal package: no sidecar inside,
#                                                    so the extension starts `switchboard` from
#                                                    PATH unless switchboard.path names one
#   scripts/package.sh --bundle BIN [--out FILE]     a package for this machine's platform with
#                                                    BIN inside as bin/switchboard, which the
#                                                    extension prefers to PATH
#
# A bundled sidecar is a native binary, so its package is marked with vsce's --target for the
# platform it was built on; VS Code then refuses to install it anywhere else instead of
# failing to start the sidecar.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

out=switchboard.vsix
bundle=
while [ $# -gt 0 ]; do
  case $1 in
    --bundle) bundle=${2:?--bundle needs the switchboard binary}; shift 2 ;;
    --out) out=${2:?--out needs a file name}; shift 2 ;;
    *) echo "usage: scripts/package.sh [--bundle BIN] [--out FILE]" >&2; exit 2 ;;
  esac
done

# bin/ only ever holds what this run put there, so a universal package never picks up a
# binary left behind by an earlier bundled one.
rm -rf bin
if [ -z "$bundle" ]; then
  exec npx vsce package --no-dependencies --out "$out"
fi

if [ ! -x "$bundle" ]; then
  echo "$bundle is not an executable file" >&2
  exit 1
fi
target=$(node -p '
  const arch = { x64: "x64", arm64: "arm64", arm: "armhf" }[process.arch];
  // musl Linux (Alpine) has a target of its own; glibc reports its version, musl does not.
  const musl = process.platform === "linux" && !process.report.getReport().header.glibcVersionRuntime;
  const os = { linux: musl ? "alpine" : "linux", darwin: "darwin", win32: "win32" }[process.platform];
  os && arch ? `${os}-${arch}` : ""
')
if [ -z "$target" ]; then
  echo "no vsce target for $(node -p 'process.platform + "-" + process.arch')" >&2
  exit 1
fi
name=switchboard
if [ "$(node -p process.platform)" = win32 ]; then
  name=switchboard.exe
fi
trap 'rm -rf "$here/bin"' EXIT
mkdir bin
install -m 0755 "$bundle" "bin/$name"
npx vsce package --no-dependencies --target "$target" --out "$out"
