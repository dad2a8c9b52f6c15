# shellcheck shell=bash
#
# The NATS server for the Taskstream test suite: Debian's nats-server (2.9 or newer, with
# JetStream). The NATS transport's tests start their own servers from it, one per test, on free
# 127.0.0.1 ports with their own store directories (stream::nats_process::NatsServer). Sourced by
# scripts/test; on its own:
#
#   bash -c 'set -euo pipefail; source scripts/lib/nats.sh; ts_nats_provision'
#
# ts_nats_provision: exports TASKSTREAM_NATS_SERVER (the binary), installing Debian's
# nats-server package with apt-get when no nats-server is found (root only). Returns non-zero,
# saying why, when there is none and it cannot be installed, or when it is older than 2.9.

TS_NATS_MIN_MINOR=9

_tsnats_say() { printf '==> %s\n' "$*"; }
_tsnats_warn() { printf 'warning: %s\n' "$*" >&2; }

# The nats-server binary: $TASKSTREAM_NATS_SERVER, then PATH, then /usr/sbin (Debian's place).
_tsnats_find() {
    local candidate
    for candidate in "${TASKSTREAM_NATS_SERVER:-}" "$(command -v nats-server 2>/dev/null || true)" /usr/sbin/nats-server; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

ts_nats_provision() {
    local binary version minor
    if ! binary="$(_tsnats_find)"; then
        if [[ "$(id -u)" != 0 ]]; then
            _tsnats_warn "nats: nats-server is not installed and installing it needs root (apt-get install nats-server)."
            return 1
        fi
        _tsnats_say "nats: nats-server is not installed; installing Debian's package (the NATS transport's tests need a real server)."
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server >/dev/null; then
            if ! { apt-get update -q >/dev/null &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server >/dev/null; }; then
                _tsnats_warn "nats: apt-get install nats-server failed (see above)."
                return 1
            fi
        fi
        binary="$(_tsnats_find)" || {
            _tsnats_warn "nats: nats-server was installed but is not found."
            return 1
        }
    fi
    version="$("$binary" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}\([0-9.]*\).*/\1/p')"
    minor="$(printf '%s' "$version" | cut -d. -f2)"
    if [[ "$(printf '%s' "$version" | cut -d. -f1)" != 2 || -z "$minor" || "$minor" -lt "$TS_NATS_MIN_MINOR" ]]; then
        _tsnats_warn "nats: $binary is version '${version:-unknown}'; the tests need nats-server 2.$TS_NATS_MIN_MINOR or newer."
        return 1
    fi
    export TASKSTREAM_NATS_SERVER="$binary"
    TS_NATS_DESC="nats-server $version at $binary"
    _tsnats_say "nats: using $TS_NATS_DESC"
}
