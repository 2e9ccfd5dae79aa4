#!/usr/bin/env bash
# A short demo of the main job, in a scratch folder, against the fake Anthropic service:
# two accounts, a background refresh done the way Claude Code does it, a switch and back,
# and proof from the service that no refresh token was spent twice.
#
#   bash scripts/demo.sh [PATH-TO-SWITCHBOARD]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin="${1:-$root/target/debug/switchboard}"

cargo build --quiet --locked -p switchboard-tests --bins
[ -x "$bin" ] || cargo build --quiet --locked -p switchboard
fake="$root/target/debug/fake-anthropic"
claude="$root/target/debug/fake-claude"

scratch=$(mktemp -d)
fake_pid=
cleanup() {
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

# The demo's whole world lives in the scratch folder: Claude's files, the vault, the service.
export HOME="$scratch/home" SWITCHBOARD_HOME="$scratch/vault"
unset CLAUDE_CONFIG_DIR CLAUDE_SECURESTORAGE_CONFIG_DIR CLAUDE_CODE_OAUTH_TOKEN \
  ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR
mkdir -p "$HOME"

"$fake" --listen 127.0.0.1:0 >"$scratch/fake.out" 2>"$scratch/fake.log" &
fake_pid=$!
for _ in $(seq 50); do
  grep -q '^listening on ' "$scratch/fake.out" 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$scratch/fake.out")
[ -n "$url" ] || { echo "the fake service did not start"; cat "$scratch/fake.log"; exit 1; }
export SWITCHBOARD_TOKEN_URL="$url/v1/oauth/token" SWITCHBOARD_API_BASE="$url"
export FAKE_CLAUDE_TOKEN_URL="$url/v1/oauth/token"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }

# `claude /login` with an account: the fake mints a login, the simulated Claude writes it.
login() {
  local ids account organization
  ids=$(curl -sf -X POST -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"organizationName\":\"$2\",\"organizationType\":\"$3\"}" \
    "$url/_control/accounts")
  account=$(field accountUuid <<<"$ids")
  organization=$(field organizationUuid <<<"$ids")
  "$claude" login --fake-url "$url" --account "$account" --organization "$organization" \
    >/dev/null 2>>"$scratch/claude.log"
}

step "Ada logs in to Claude Code with her work account, and names it"
login ada@example.com "Example Corp" claude_max
run "$bin" add work

step "She logs in with her own account too (no /logout: that would revoke the first), and names it"
login ada@home.example "Ada's Individual Org" claude_pro
run "$bin" add home
run "$bin" list

step "A Claude session in the background refreshes home's token, spending the old one"
"$claude" refresh >/dev/null 2>>"$scratch/claude.log"
echo "(the copy of home's token taken at 'add' is now dead at the service)"

step "Switch to work: Switchboard first stores home's rotated token, then installs work"
run "$bin" use work

step "And back: home comes back with its newest token, not the dead copy"
run "$bin" use -
run "$bin" status --validate
run "$bin" list

step "What the service saw"
report=$(curl -sf "$url/_control/report")
reuses=$(sed -n 's/.*"reuses":\([0-9]*\),"requests".*/\1/p' <<<"$report")
echo "refresh tokens spent twice: ${reuses:-?} (a switcher that copies tokens would have hit invalid_grant here)"
[ "$reuses" = 0 ]
echo
echo "Done. For real use: log in with \`claude\`, then \`switchboard add NAME\` (README.md)."
