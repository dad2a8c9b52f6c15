# shellcheck shell=bash
#
# The Kafka-protocol broker for the Taskstream test suite: tansu 0.6.0 (a
# Kafka-compatible broker written in Rust, installable from the Rust package registry; Redpanda
# and Apache Kafka are not installable from the registries here). Sourced by
# scripts/test; it can also be sourced on its own:
#
#   source scripts/lib/kafka.sh
#   ts_kafka_provision   # exports TASKSTREAM_TANSU (or fails)
#
# ts_kafka_provision only makes sure the right binary is there. The tests
# start their own brokers (stream::broker_process::TansuBroker: one per test,
# on a free 127.0.0.1 port, SQLite storage in a temporary directory), so that
# they control killing and restarting them.
#
# It uses, first that works:
#   1. $TASKSTREAM_TANSU, if it is set and `$TASKSTREAM_TANSU --version` says
#      tansu 0.6.0 (a binary built elsewhere);
#   2. `tansu` on PATH or in $CARGO_HOME/bin (default ~/.cargo/bin), when
#      `cargo install --list` also lists tansu v0.6.0;
#   3. a one-time install, exactly:
#        cargo install tansu --version 0.6.0 --locked --no-default-features --features libsql
#      (about 15-25 minutes on a 2-core machine; later runs reuse it). It is
#      built without CARGO_TARGET_DIR, so that cargo builds it in a temporary
#      directory and deletes it afterwards instead of filling the shared
#      target directory.
#
# Exports TASKSTREAM_TANSU (absolute path of the binary) and sets
# TS_KAFKA_DESC (one line saying which binary is used).

TS_KAFKA_TANSU_VERSION="0.6.0"
TS_KAFKA_DESC=""

_tskafka_say() { printf '==> %s\n' "$*"; }
_tskafka_note() { printf '    %s\n' "$*"; }
_tskafka_warn() { printf '!!! %s\n' "$*" >&2; }

_tskafka_cargo_bin() { printf '%s/bin\n' "${CARGO_HOME:-$HOME/.cargo}"; }

# Whether binary $1 reports the expected version ("tansu 0.6.0").
_tskafka_is_expected_version() {
    local out
    out="$("$1" --version 2>/dev/null)" || return 1
    [[ "$out" == "tansu $TS_KAFKA_TANSU_VERSION" ]]
}

# Whether cargo's install registry lists tansu at the expected version.
_tskafka_cargo_lists_it() {
    cargo install --list 2>/dev/null | grep -qxF "tansu v$TS_KAFKA_TANSU_VERSION:"
}

# Absolute path of a tansu of the expected version: the one on PATH, else the
# one in cargo's bin directory (which may not be on PATH).
_tskafka_locate() {
    local candidate
    for candidate in "$(command -v tansu 2>/dev/null || true)" "$(_tskafka_cargo_bin)/tansu"; do
        [[ -n "$candidate" && -x "$candidate" ]] || continue
        if _tskafka_is_expected_version "$candidate"; then
            readlink -f "$candidate"
            return 0
        fi
    done
    return 1
}

_tskafka_use() {
    export TASKSTREAM_TANSU="$1"
    TS_KAFKA_DESC="tansu $TS_KAFKA_TANSU_VERSION at $1 ($2)"
    _tskafka_say "kafka: $TS_KAFKA_DESC"
    _tskafka_note "tests start their own brokers on free 127.0.0.1 ports (TASKSTREAM_TANSU=$1)"
}

_tskafka_install() {
    _tskafka_say "kafka: tansu $TS_KAFKA_TANSU_VERSION is not installed; installing it once."
    _tskafka_note "Why: the pipeline tests need a real Kafka-protocol broker, and tansu is"
    _tskafka_note "the one installable here (Rust package registry). This takes about 15-25 minutes the"
    _tskafka_note "first time; later runs find it in $(_tskafka_cargo_bin) and skip this."
    _tskafka_note "cargo install tansu --version $TS_KAFKA_TANSU_VERSION --locked --no-default-features --features libsql"
    env -u CARGO_TARGET_DIR \
        cargo install tansu --version "$TS_KAFKA_TANSU_VERSION" --locked --no-default-features --features libsql
}

ts_kafka_provision() {
    local bin
    if [[ -n "${TASKSTREAM_TANSU:-}" ]]; then
        if [[ -x "$TASKSTREAM_TANSU" ]] && _tskafka_is_expected_version "$TASKSTREAM_TANSU"; then
            _tskafka_use "$(readlink -f "$TASKSTREAM_TANSU")" "from TASKSTREAM_TANSU"
            return 0
        fi
        _tskafka_warn "TASKSTREAM_TANSU=$TASKSTREAM_TANSU is not a tansu $TS_KAFKA_TANSU_VERSION binary; ignoring it."
        unset TASKSTREAM_TANSU
    fi

    if bin="$(_tskafka_locate)" && _tskafka_cargo_lists_it; then
        _tskafka_use "$bin" "already installed"
        return 0
    fi

    if ! command -v cargo >/dev/null 2>&1; then
        _tskafka_warn "kafka: cargo is not on PATH, cannot install tansu $TS_KAFKA_TANSU_VERSION."
        return 1
    fi
    if ! _tskafka_install; then
        _tskafka_warn "kafka: installing tansu $TS_KAFKA_TANSU_VERSION failed (see above)."
        return 1
    fi
    if bin="$(_tskafka_locate)"; then
        _tskafka_use "$bin" "installed now"
        return 0
    fi
    _tskafka_warn "kafka: tansu $TS_KAFKA_TANSU_VERSION was installed but is not found on PATH or in $(_tskafka_cargo_bin)."
    return 1
}

# The independent client the interoperability test reads the topics with.
TS_KAFKA_PYTHON_VERSION=2.3.3

# shellcheck source=scripts/lib/python.sh
source "$(dirname "${BASH_SOURCE[0]}")/python.sh"

# ts_kafka_python_provision: makes `python3 -c 'import kafka'` work (kafka-python, from PyPI).
ts_kafka_python_provision() {
    ts_pip_pinned kafka-python "$TS_KAFKA_PYTHON_VERSION" "for the interoperability test"
}
