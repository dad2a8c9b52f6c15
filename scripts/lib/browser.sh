# shellcheck shell=bash
#
# Browser tests of the Taskstream web app (web/tests/*.test.mjs): Debian's
# Chromium driven by playwright-core against the real taskstream binary.
# Sourced by scripts/test; it can also be sourced on its own:
#
#   source scripts/lib/browser.sh
#   ts_browser_provision   # Chromium (apt, as root) and web/node_modules (npm ci)
#   ts_browser_tests       # builds the binary, runs the tests; non-zero on failure
#
# Both functions work under `set -euo pipefail` and leave the caller's options
# as they were.
#
# Environment:
#   CARGO_TARGET_DIR   where the binary is built (default: $REPO/target)
#   TASKSTREAM_BIN     use this binary instead of building one
#   CHROMIUM_PATH      the browser (default /usr/bin/chromium)
#   TASKSTREAM_SCREENSHOTS=1
#                      write the screenshots to docs/screenshots (the README's
#                      images) instead of a temporary directory
#
# Runtime: about a minute once the binary is built (the first Chromium
# install takes a few minutes; the first release-less build of the gateway
# several more).

TS_BROWSER_REPO_ROOT="${TS_BROWSER_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

# Installs what the browser tests need: Debian's chromium when /usr/bin/chromium
# is missing (needs root), and the npm packages of web/ when node_modules is
# missing or older than package-lock.json.
ts_browser_provision() {
  local chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
  if [[ ! -x "$chromium" ]]; then
    if [[ "$(id -u)" != 0 ]]; then
      echo "browser: $chromium is missing and installing it needs root (apt-get install chromium)" >&2
      return 1
    fi
    echo "browser: installing Debian's chromium"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || return 1
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || return 1
    fi
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "browser: node and npm are needed (Node.js 20 or later)" >&2
    return 1
  fi
  local web="$TS_BROWSER_REPO_ROOT/web"
  local stamp="$web/node_modules/.package-lock.json"
  if [[ ! -f "$stamp" || "$web/package-lock.json" -nt "$stamp" ]]; then
    echo "browser: npm ci in web/"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  fi
  echo "browser: $("$chromium" --version 2>/dev/null || echo "$chromium"), playwright-core $(
    cd "$web" && node -p "require('playwright-core/package.json').version")"
}

# Builds the taskstream binary (unless TASKSTREAM_BIN is set) and runs the
# browser tests with node's test runner; returns its exit status.
ts_browser_tests() {
  local bin="${TASKSTREAM_BIN:-}"
  if [[ -z "$bin" ]]; then
    local target="${CARGO_TARGET_DIR:-$TS_BROWSER_REPO_ROOT/target}"
    echo "browser: cargo build -p graphql --bin taskstream"
    (cd "$TS_BROWSER_REPO_ROOT" && cargo build --quiet -p graphql --bin taskstream) || return 1
    bin="$target/debug/taskstream"
  fi
  local tests=("$TS_BROWSER_REPO_ROOT"/web/tests/*.test.mjs)
  echo "browser: running ${#tests[@]} test file(s) against $bin"
  (cd "$TS_BROWSER_REPO_ROOT/web" &&
    TASKSTREAM_BIN="$bin" node --test --test-concurrency=1 --test-reporter=spec "${tests[@]}")
}
