# shellcheck shell=bash
#
# PostgreSQL for the Taskstream test suite. Sourced by scripts/test; it can
# also be sourced on its own:
#
#   source scripts/lib/postgres.sh
#   ts_postgres_provision   # exports TEST_DATABASE_URL (or fails)
#
# ts_postgres_provision exports TEST_DATABASE_URL as an ADMIN url
# (postgres://postgres@127.0.0.1:PORT/postgres or the caller's own); the tests
# connect to it and create one fresh database per test, so the role needs
# CREATEDB. It tries, in order:
#
#   1. $TEST_DATABASE_URL, if it is set and answers `select 1`;
#   2. the machine's server: postgres://postgres@127.0.0.1:5432/postgres;
#   3. starting the machine's cluster(s) with pg_ctlcluster (if
#      /etc/postgresql exists), then step 2 again;
#   4. a throwaway cluster: installs Debian's postgresql packages when the
#      binaries are missing (root only), initdb's a cluster under
#      $REPO/.test-services/pg/ (trust auth, 127.0.0.1 only, a free port from
#      54329 up) and stops and deletes it when the shell exits.
#
# Environment:
#   TEST_DATABASE_URL              admin url to try first (see above)
#   TASKSTREAM_TEST_PG=throwaway   skip steps 1-3, always use a throwaway
#                                  cluster (default: auto)
#   TASKSTREAM_TEST_SKIP_POSTGRES=1
#                                  when no PostgreSQL can be provided, warn
#                                  loudly and go on (exported, so the tests
#                                  know; TEST_DATABASE_URL is then unset)
#                                  instead of failing
#
# Sets TS_PG_KIND (url | machine | throwaway | skipped) and TS_PG_DESC (one
# line saying which server is used). Cleanup of a throwaway cluster is
# registered with ts_cleanup_add if the caller defines it (scripts/test
# does), otherwise with `trap ... EXIT` (replacing any EXIT trap).

TS_PG_REPO_ROOT="${TS_PG_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
TS_PG_MACHINE_URL="postgres://postgres@127.0.0.1:5432/postgres"
TS_PG_FIRST_PORT="${TS_PG_FIRST_PORT:-54329}"
TS_PG_KIND=""
TS_PG_DESC=""
TS_PG_THROWAWAY_DIR=""
TS_PG_THROWAWAY_BIN=""
TS_PG_THROWAWAY_USER=""
TS_PG_INSTALL_TRIED=0

_tspg_say() { printf '==> %s\n' "$*"; }
_tspg_note() { printf '    %s\n' "$*"; }
_tspg_warn() { printf '!!! %s\n' "$*" >&2; }

# Hide the password, if any, of a url before printing it.
_tspg_redact() {
    printf '%s' "$1" | sed -E 's#^([a-z]+://[^:/@]*):[^@/]*@#\1:***@#'
}

_tspg_is_root() { [[ "$(id -u)" == 0 ]]; }

_tspg_have_client() {
    command -v psql >/dev/null 2>&1 || command -v pg_isready >/dev/null 2>&1
}

# Directory holding initdb/pg_ctl/postgres, newest Debian version first.
_tspg_find_bindir() {
    local d
    # shellcheck disable=SC2012 # the names are plain version numbers
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    local initdb
    initdb="$(command -v initdb 2>/dev/null || true)"
    if [[ -n "$initdb" ]]; then
        d="$(dirname "$(readlink -f "$initdb")")"
        if [[ -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    fi
    return 1
}

# Install Debian's server and client packages (once, root only).
_tspg_install_packages() {
    if ((TS_PG_INSTALL_TRIED)); then
        return 1
    fi
    TS_PG_INSTALL_TRIED=1
    if ! _tspg_is_root; then
        _tspg_warn "PostgreSQL binaries are missing and this is not root: cannot apt-get install them."
        _tspg_warn "Install them yourself: apt-get install postgresql postgresql-client"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        _tspg_warn "PostgreSQL binaries are missing and there is no apt-get to install them."
        return 1
    fi
    _tspg_say "Installing Debian packages postgresql postgresql-client (apt-get)"
    local log
    log="$(mktemp "${TMPDIR:-/tmp}/taskstream-apt.XXXXXX")"
    if apt-get update >"$log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            postgresql postgresql-client >>"$log" 2>&1 </dev/null; then
        rm -f "$log"
        return 0
    fi
    _tspg_warn "apt-get failed; last lines of its output:"
    tail -n 20 "$log" >&2 || true
    rm -f "$log"
    return 1
}

# Does this url answer a query? 0 yes, 1 no. Installs the client tools when
# neither psql nor pg_isready exists (root only).
_tspg_answers() {
    local url="$1"
    if ! _tspg_have_client; then
        _tspg_install_packages || true
    fi
    if command -v psql >/dev/null 2>&1; then
        [[ "$(PGCONNECT_TIMEOUT=5 psql -X -w -A -t -q -d "$url" -c 'select 1' 2>/dev/null </dev/null)" == 1 ]]
    elif command -v pg_isready >/dev/null 2>&1; then
        PGCONNECT_TIMEOUT=5 pg_isready -q -t 5 -d "$url" >/dev/null 2>&1
    else
        return 1
    fi
}

# One-line "PostgreSQL 15.19" style version of the server, or "?".
_tspg_server_version() {
    local v=""
    if command -v psql >/dev/null 2>&1; then
        v="$(PGCONNECT_TIMEOUT=5 psql -X -w -A -t -q -d "$1" -c 'show server_version' 2>/dev/null </dev/null || true)"
    fi
    printf 'PostgreSQL %s' "${v:-?}"
}

# Warn when the url's role cannot create databases (the tests need it).
_tspg_check_createdb() {
    command -v psql >/dev/null 2>&1 || return 0
    local can
    can="$(PGCONNECT_TIMEOUT=5 psql -X -w -A -t -q -d "$1" \
        -c 'select rolsuper or rolcreatedb from pg_roles where rolname = current_user' \
        2>/dev/null </dev/null || true)"
    if [[ "$can" != t ]]; then
        _tspg_warn "The role in TEST_DATABASE_URL may lack CREATEDB; the tests create one database per test."
    fi
}

_tspg_use() {
    TS_PG_KIND="$1"
    export TEST_DATABASE_URL="$2"
    TS_PG_DESC="$TS_PG_KIND: $(_tspg_redact "$2") ($(_tspg_server_version "$2"))"
    _tspg_say "Using PostgreSQL $TS_PG_DESC"
}

# Start the machine's own cluster(s) if they are stopped.
_tspg_start_machine_clusters() {
    [[ -d /etc/postgresql ]] || return 1
    command -v pg_ctlcluster >/dev/null 2>&1 || return 1
    local conf ver name started=1
    for conf in /etc/postgresql/*/*/postgresql.conf; do
        [[ -e "$conf" ]] || continue
        ver="$(basename "$(dirname "$(dirname "$conf")")")"
        name="$(basename "$(dirname "$conf")")"
        _tspg_say "Starting the machine's cluster: pg_ctlcluster $ver $name start"
        local out rc=0
        out="$(pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start </dev/null 2>&1)" || rc=$?
        [[ -z "$out" ]] || printf '%s\n' "$out" | sed 's/^/    /'
        ((rc != 0)) || started=0
    done
    return "$started"
}

_tspg_port_in_use() {
    (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Run a command as the throwaway cluster's owner, from a directory it can read.
_tspg_as_owner() {
    if _tspg_is_root; then
        (cd / && runuser -u "$TS_PG_THROWAWAY_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# Remove leftovers of earlier throwaway clusters whose server is gone
# (a run killed with SIGKILL). Live ones may belong to a concurrent run.
_tspg_remove_stale() {
    local base="$1" d pid
    for d in "$base"/run.*; do
        [[ -d "$d" ]] || continue
        pid=""
        if [[ -r "$d/data/postmaster.pid" ]]; then
            pid="$(head -n 1 "$d/data/postmaster.pid" 2>/dev/null || true)"
        fi
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            continue
        fi
        rm -rf "$d" 2>/dev/null || true
    done
}

# Make the directory holding the throwaway cluster and print its path.
_tspg_make_dir() {
    local base="$TS_PG_REPO_ROOT/.test-services/pg" dir
    # Called as `dir="$(_tspg_make_dir)" || ...`, where set -e is off.
    mkdir -p "$base" || return 1
    _tspg_remove_stale "$base"
    dir="$(mktemp -d "$base/run.XXXXXX")" || return 1
    if _tspg_is_root; then
        chown "$TS_PG_THROWAWAY_USER" "$dir" || return 1
        # The owner needs to reach it: the repo may sit below a 0700 folder.
        if ! runuser -u "$TS_PG_THROWAWAY_USER" -- test -w "$dir" 2>/dev/null; then
            rm -rf "$dir"
            dir="$(mktemp -d "${TMPDIR:-/tmp}/taskstream-pg.XXXXXX")" || return 1
            chown "$TS_PG_THROWAWAY_USER" "$dir" || return 1
            _tspg_note "($base is not reachable by user $TS_PG_THROWAWAY_USER; using $dir)" >&2
        fi
    fi
    printf '%s\n' "$dir"
}

# Stop the throwaway cluster and delete its directory. Safe to call twice.
ts_postgres_stop_throwaway() {
    local dir="$TS_PG_THROWAWAY_DIR"
    [[ -n "$dir" ]] || return 0
    TS_PG_THROWAWAY_DIR=""
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        _tspg_say "Stopping the throwaway PostgreSQL cluster"
        if ! _tspg_as_owner "$TS_PG_THROWAWAY_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1; then
            _tspg_as_owner "$TS_PG_THROWAWAY_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
        fi
    fi
    rm -rf "$dir" || true
    return 0
}

_tspg_register_cleanup() {
    if declare -F ts_cleanup_add >/dev/null; then
        ts_cleanup_add ts_postgres_stop_throwaway
    else
        trap ts_postgres_stop_throwaway EXIT
    fi
}

# Start a throwaway cluster; on success export TEST_DATABASE_URL.
_tspg_start_throwaway() {
    local bindir
    if ! bindir="$(_tspg_find_bindir)"; then
        _tspg_install_packages || true
        if ! bindir="$(_tspg_find_bindir)"; then
            _tspg_warn "No PostgreSQL server binaries (initdb, pg_ctl, postgres) found."
            return 1
        fi
    fi
    TS_PG_THROWAWAY_BIN="$bindir"
    TS_PG_THROWAWAY_USER="$(id -un)"
    if _tspg_is_root; then
        # initdb refuses to run as root. -U postgres below names the
        # superuser role postgres whatever the OS user is.
        if id -u postgres >/dev/null 2>&1; then
            TS_PG_THROWAWAY_USER=postgres
        else
            TS_PG_THROWAWAY_USER=nobody
        fi
    fi

    _tspg_say "Starting a throwaway PostgreSQL cluster ($bindir, as user $TS_PG_THROWAWAY_USER)"
    local dir
    dir="$(_tspg_make_dir)" || return 1
    TS_PG_THROWAWAY_DIR="$dir"
    _tspg_register_cleanup

    if ! _tspg_as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust \
        -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
        _tspg_warn "initdb failed; its output:"
        sed 's/^/    /' "$dir/initdb.log" >&2 || true
        return 1
    fi

    # Unix socket in the temp dir, unless its path would be too long
    # (108 bytes); the tests connect over TCP anyway.
    local sockdir="$dir"
    if ((${#dir} > 80)); then
        sockdir=""
    fi

    local port="$TS_PG_FIRST_PORT" tries=0
    while ((tries < 20)); do
        tries=$((tries + 1))
        if _tspg_port_in_use "$port"; then
            port=$((port + 1))
            continue
        fi
        if _tspg_as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$sockdir' -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >"$dir/pg_ctl.log" 2>&1; then
            local url="postgres://postgres@127.0.0.1:$port/postgres"
            if _tspg_answers "$url"; then
                _tspg_use throwaway "$url"
                _tspg_note "data and logs in $dir (deleted on exit)"
                return 0
            fi
            _tspg_warn "The throwaway cluster started but does not answer on port $port."
            break
        fi
        # Lost a race for the port? Try the next one; otherwise give up.
        if grep -q -i 'could not bind\|address already in use' "$dir/postgres.log" 2>/dev/null; then
            port=$((port + 1))
            continue
        fi
        break
    done
    _tspg_warn "Could not start the throwaway cluster; server log:"
    tail -n 30 "$dir/postgres.log" >&2 2>/dev/null || cat "$dir/pg_ctl.log" >&2 || true
    return 1
}

# Provide PostgreSQL for the tests (see the top of this file).
ts_postgres_provision() {
    local mode="${TASKSTREAM_TEST_PG:-auto}"
    case "$mode" in
        auto | throwaway) ;;
        *)
            _tspg_warn "TASKSTREAM_TEST_PG must be auto or throwaway, not '$mode'."
            return 2
            ;;
    esac

    if [[ "$mode" == auto ]]; then
        if [[ -n "${TEST_DATABASE_URL:-}" ]]; then
            if _tspg_answers "$TEST_DATABASE_URL"; then
                _tspg_check_createdb "$TEST_DATABASE_URL"
                _tspg_use url "$TEST_DATABASE_URL"
                return 0
            fi
            _tspg_warn "TEST_DATABASE_URL=$(_tspg_redact "$TEST_DATABASE_URL") does not answer; looking for another server."
        fi
        if _tspg_answers "$TS_PG_MACHINE_URL"; then
            _tspg_use machine "$TS_PG_MACHINE_URL"
            return 0
        fi
        if _tspg_start_machine_clusters; then
            local i
            for i in 1 2 3 4 5 6 7 8 9 10; do
                if _tspg_answers "$TS_PG_MACHINE_URL"; then
                    _tspg_use machine "$TS_PG_MACHINE_URL"
                    return 0
                fi
                [[ "$i" == 10 ]] || sleep 1
            done
            _tspg_warn "The machine's cluster started but $TS_PG_MACHINE_URL does not answer (auth or port?)."
        fi
    else
        _tspg_say "TASKSTREAM_TEST_PG=throwaway: not looking for an existing server"
    fi

    if _tspg_start_throwaway; then
        return 0
    fi
    ts_postgres_stop_throwaway

    if [[ "${TASKSTREAM_TEST_SKIP_POSTGRES:-}" == 1 ]]; then
        export TASKSTREAM_TEST_SKIP_POSTGRES=1
        unset TEST_DATABASE_URL
        TS_PG_KIND=skipped
        TS_PG_DESC="skipped (TASKSTREAM_TEST_SKIP_POSTGRES=1)"
        _tspg_warn "################################################################"
        _tspg_warn "NO POSTGRESQL: TASKSTREAM_TEST_SKIP_POSTGRES=1 is set, so the"
        _tspg_warn "PostgreSQL tests will be SKIPPED. This run does not test the"
        _tspg_warn "production database."
        _tspg_warn "################################################################"
        return 0
    fi
    if [[ "$mode" == auto ]]; then
        _tspg_warn "No PostgreSQL could be provided for the tests (tried: TEST_DATABASE_URL,"
        _tspg_warn "$TS_PG_MACHINE_URL, pg_ctlcluster, a throwaway cluster; see above)."
    else
        _tspg_warn "No PostgreSQL could be provided for the tests (TASKSTREAM_TEST_PG=throwaway; see above)."
    fi
    _tspg_warn "Set TEST_DATABASE_URL to a server whose role can CREATE DATABASE, or set"
    _tspg_warn "TASKSTREAM_TEST_SKIP_POSTGRES=1 to run without the PostgreSQL tests."
    return 1
}
