# shellcheck shell=bash
#
# The real container image: infra/docker/Dockerfile built with Docker and run against a test
# database. The `image` step of scripts/test; on its own, as root:
#
#   bash scripts/lib/image.sh    # uses TEST_DATABASE_URL, else provisions PostgreSQL as scripts/test
#
# ts_image_check returns 0 only if every check passed. It runs in a subshell with its own
# cleanups (containers, the test database, a dockerd it started), run however it ends.
#
#   1. Docker and the base images (scripts/lib/docker.sh): a running daemon, else Debian's
#      dockerd started without bridge networking; local stand-ins for rust:1.95-slim-bookworm
#      and gcr.io/distroless/cc-debian12:nonroot made with debootstrap, cached by tag.
#   2. The real Dockerfile, built from the repository root with --network host (cargo fetches
#      crates from crates.io) by Docker's legacy builder (DOCKER_BUILDKIT=0): the client here
#      has no buildx, and BuildKit would fetch the `# syntax=docker/dockerfile:1` frontend from
#      Docker Hub, which the legacy builder reads as a comment. The Dockerfile uses nothing
#      BuildKit-only, so CI's Buildx and this build read the same file. Unchanged sources build
#      from the cache in seconds; after a source change, cargo-chef's layer keeps the
#      dependencies and only the workspace crates are compiled.
#   3. The image run, always with --network host, against a fresh PostgreSQL database (dropped
#      at exit): /healthz and /readyz answer 200; a GraphQL createTask, and a query that reads
#      the task back, work with a token made by the image's own `taskstream token`, and a
#      request without one is UNAUTHENTICATED; the main process runs as uid and gid 65532
#      (/proc/PID/status) and `docker inspect` says User 65532:65532; SIGTERM ends it with
#      status 0; its log is JSON lines; each binary is in /usr/local/bin, owned by root, not
#      writable by others, and answers --help; an unsupported and an unreachable DATABASE_URL
#      each make the gateway exit non-zero at once, saying why, without printing the password.
#
# Environment:
#   TEST_DATABASE_URL          PostgreSQL admin URL; unset with TASKSTREAM_TEST_SKIP_POSTGRES=1,
#                              the container runs on SQLite, with a warning
#   TASKSTREAM_IMAGE_BASE      local (default): base images made by scripts/lib/docker.sh (root);
#                              official: the Dockerfile's defaults, pulled by the build (where
#                              their registries are reachable, as on GitHub's runners)
#   and scripts/lib/docker.sh's (TS_IMAGE_CACHE: logs and caches, default ~/.cache/taskstream/image;
#   TASKSTREAM_IMAGE_MIRROR, TASKSTREAM_IMAGE_REBUILD_BASE, DOCKER_HOST).
#
# Runtime on 2 busy cores: about 25 minutes the first time (2 for the packages and base images,
# 21 to 25 for cargo-chef and every dependency in release mode); 5 to 9 minutes after a source
# change (the workspace's crates); 25 seconds when nothing changed.

TS_IMAGE_REPO_ROOT="${TS_IMAGE_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
TS_IMAGE_TAG=taskstream-local/taskstream:test
# The builder stage is tagged too, so that pruning never drops the cached dependency layer.
TS_IMAGE_BUILD_STAGE_TAG=taskstream-local/taskstream-builder:test
TS_IMAGE_BINARIES=(taskstream recurrence reminder notification migration)
TS_IMAGE_UID=65532
# Every container started here carries this label; the cleanup removes them by it.
TS_IMAGE_LABEL=dev.taskstream.image-check
TS_IMAGE_DATABASE=""

# shellcheck source=scripts/lib/docker.sh
source "$TS_IMAGE_REPO_ROOT/scripts/lib/docker.sh"

_tsimage_say() { printf '==> image: %s\n' "$*"; }
_tsimage_note() { printf '    %s\n' "$*"; }
_tsimage_warn() { printf '!!! image: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- build

# docker build ARGS... with the base images, showing the steps (the whole output is in the log).
_tsimage_docker_build() {
    local -
    local log="$TS_IMAGE_CACHE/build.log"
    set -o pipefail
    if ! (cd "$TS_IMAGE_REPO_ROOT" && DOCKER_BUILDKIT=0 docker build --network host --force-rm \
        -f infra/docker/Dockerfile \
        --build-arg "BUILDER_IMAGE=$TS_DOCKER_BUILDER_IMAGE" --build-arg "RUNTIME_IMAGE=$TS_DOCKER_RUNTIME_IMAGE" \
        "$@" . 2>&1) | tee -a "$log" |
        grep --line-buffered -E '^(Step [0-9]+/|Sending build context| ---> Using cache|Successfully tagged)' |
        sed -u 's/^/    /'; then
        _tsimage_warn "docker build failed; the end of $log:"
        tail -n 40 "$log" >&2
        return 1
    fi
}

_tsimage_build() {
    local start=$SECONDS rc=0
    : >"$TS_IMAGE_CACHE/build.log"
    _tsimage_say "docker build infra/docker/Dockerfile (legacy builder, --network host; log: $TS_IMAGE_CACHE/build.log)"
    _tsimage_docker_build --target builder -t "$TS_IMAGE_BUILD_STAGE_TAG" &&
        _tsimage_docker_build -t "$TS_IMAGE_TAG" || rc=1
    # Superseded layers of earlier (or failed) builds: dangling images made from the local base
    # images only.
    docker image prune -f --filter "label=dev.taskstream.base" >/dev/null || true
    ((rc == 0)) || return 1
    _tsimage_note "built $TS_IMAGE_TAG ($(docker image inspect -f '{{.Size}}' "$TS_IMAGE_TAG" | numfmt --to=iec)) in $((SECONDS - start)) s"
}

# cargo-chef's point: the final `cargo build` compiles the workspace's crates only, and takes
# every dependency from the cooked layer (read from the build log; a cached step compiles none).
_tsimage_check_layering() {
    local compiled deps
    compiled="$(sed 's/\x1b\[[0-9;]*m//g' "$TS_IMAGE_CACHE/build.log" |
        awk '/^Step [0-9]+\/[0-9]+ : RUN cargo build/ { on = 1; next } /^Step / { on = 0 } on && /Compiling / { print }')"
    deps="$(grep -v '(/src/' <<<"$compiled" || true)"
    if [[ -n "$deps" ]]; then
        _tsimage_fail "the final cargo build compiled dependencies, not only the workspace: $(tr -s ' \n' ' ' <<<"$deps")"
    elif [[ -z "$compiled" ]]; then
        _tsimage_ok "cargo-chef layering: the cargo build step came from the cache"
    else
        _tsimage_ok "cargo-chef layering: the cargo build compiled only the workspace's $(grep -c . <<<"$compiled") crates"
    fi
}

# ---------------------------------------------------------------- run and check

_tsimage_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_tsimage_psql() { PGCONNECT_TIMEOUT=10 psql -X -w -q -A -t -v ON_ERROR_STOP=1 -d "$TEST_DATABASE_URL" "$@" </dev/null; }

# Sets TS_IMAGE_DATABASE_URL: a fresh database made through TEST_DATABASE_URL, dropped at exit
# (or SQLite inside the container when PostgreSQL is skipped).
_tsimage_database() {
    if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
        if [[ "${TASKSTREAM_TEST_SKIP_POSTGRES:-}" == 1 ]]; then
            _tsimage_warn "TASKSTREAM_TEST_SKIP_POSTGRES=1: the container runs on SQLite, NOT PostgreSQL"
            TS_IMAGE_DATABASE_URL="sqlite:///tmp/taskstream.db?mode=rwc"
            return 0
        fi
        _tsimage_warn "TEST_DATABASE_URL is not set (scripts/test exports it)"
        return 1
    fi
    local re='^(postgres(ql)?://[^/?]+)(/[^?]*)?(\?.*)?$' name stale
    if [[ ! "$TEST_DATABASE_URL" =~ $re ]]; then
        _tsimage_warn "TEST_DATABASE_URL is not a postgres:// URL"
        return 1
    fi
    name="taskstream_image_check_$$"
    TS_IMAGE_DATABASE_URL="${BASH_REMATCH[1]}/$name${BASH_REMATCH[4]}"
    # Databases of an earlier, killed run (this run holds the lock, so none is in use).
    for stale in $(_tsimage_psql -c "select datname from pg_database where datname like 'taskstream\_image\_check\_%'"); do
        _tsimage_psql -c "drop database if exists \"$stale\" with (force)" || true
    done
    _tsimage_psql -c "create database \"$name\"" || return 1
    TS_IMAGE_DATABASE="$name"
    ts_cleanup_add _tsimage_drop_database
}

_tsimage_drop_database() {
    [[ -n "$TS_IMAGE_DATABASE" ]] || return 0
    _tsimage_psql -c "drop database if exists \"$TS_IMAGE_DATABASE\" with (force)"
    TS_IMAGE_DATABASE=""
}

# The container's last log lines, for a failure.
_tsimage_show_logs() {
    _tsimage_note "docker logs $1 (last 40 lines):"
    docker logs --tail 40 "$1" 2>&1 | sed 's/^/      /' >&2 || true
}

_tsimage_ok() { _tsimage_note "ok: $*"; }
_tsimage_fail() {
    _tsimage_warn "FAILED: $*"
    return 1
}

# docker run -d NAME ARGS... with the label (the cleanup removes it) and host networking.
_tsimage_start() {
    local name="$1"
    shift
    docker run -d --name "$name" --label "$TS_IMAGE_LABEL" --network host "$@" >/dev/null
}

# POST a GraphQL document (JSON body $2) to port $1 with bearer token $3 (may be empty).
_tsimage_graphql() {
    local auth=()
    [[ -z "$3" ]] || auth=(-H "Authorization: Bearer $3")
    curl -sS --max-time 20 -H 'Content-Type: application/json' "${auth[@]}" \
        --data "$2" "http://127.0.0.1:$1/graphql"
}

# python3 expression EXPR on the JSON document read from stdin as `d`; prints the result.
_tsimage_json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# Every binary is in /usr/local/bin, owned by root, writable by root only, and answers --help.
_tsimage_check_binaries() {
    local name="taskstream-image-check-$$-files" listing bin line bad=0
    docker create --name "$name" --label "$TS_IMAGE_LABEL" --network host "$TS_IMAGE_TAG" >/dev/null || return 1
    listing="$(docker cp "$name:/usr/local/bin" - | tar -tv --numeric-owner -f -)" || return 1
    docker rm -f "$name" >/dev/null
    for bin in "${TS_IMAGE_BINARIES[@]}"; do
        line="$(grep -E " bin/$bin\$" <<<"$listing" || true)"
        if [[ -z "$line" ]]; then
            _tsimage_fail "/usr/local/bin/$bin is missing" || bad=1
        elif [[ ! "$line" =~ ^-rwx.-..-.\ +0/0\  ]]; then
            _tsimage_fail "/usr/local/bin/$bin is not a root-owned executable that only root may change: $line" || bad=1
        elif ! docker run --rm --label "$TS_IMAGE_LABEL" --network host --entrypoint "/usr/local/bin/$bin" \
            "$TS_IMAGE_TAG" --help >/dev/null 2>"$TS_IMAGE_CACHE/help.err"; then
            _tsimage_fail "$bin --help exits non-zero: $(tail -n 3 "$TS_IMAGE_CACHE/help.err")" || bad=1
        else
            _tsimage_ok "/usr/local/bin/$bin ($(awk '{print $1, $2}' <<<"$line")) answers --help"
        fi
    done
    return "$bad"
}

# Reads a log on stdin: every line must be JSON (LOG_FORMAT=json; `taskstream serve` logs its
# addresses as a record then, not as the plain banner of LOG_FORMAT=text).
TS_IMAGE_JSON_LOG_PY='
import json, sys
lines = [line.rstrip("\n") for line in sys.stdin if line.strip()]
plain = []
for line in lines:
    try:
        json.loads(line)
    except ValueError:
        plain.append(line)
print(f"{len(lines) - len(plain)} of {len(lines)} lines", end="")
print("".join(f"; NOT JSON: {line}" for line in plain))
sys.exit(1 if plain else 0)
'

# The gateway against the test database: health, GraphQL with and without a token, user, logs,
# graceful stop.
_tsimage_check_gateway() {
    local name="taskstream-image-check-$$-gateway" port secret code pid token reply id bad=0
    local deadline=$((SECONDS + 120))
    port="$(_tsimage_free_port)"
    secret="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
    _tsimage_say "docker run $TS_IMAGE_TAG (gateway on 127.0.0.1:$port, --network host)"
    _tsimage_start "$name" -e "DATABASE_URL=$TS_IMAGE_DATABASE_URL" -e "LISTEN_ADDR=127.0.0.1:$port" \
        -e "JWT_SECRET=$secret" "$TS_IMAGE_TAG" || return 1
    until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/healthz")" == 200 ]]; do
        if [[ "$(docker inspect -f '{{.State.Running}}' "$name")" != true ]] || ((SECONDS > deadline)); then
            _tsimage_show_logs "$name"
            _tsimage_fail "/healthz never answered 200 (the container is $(docker inspect -f '{{.State.Status}}' "$name"))"
            return 1
        fi
        sleep 1
    done
    _tsimage_ok "/healthz answers 200"
    until code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/readyz")" && [[ "$code" == 200 ]]; do
        ((SECONDS < deadline)) || break
        sleep 1
    done
    if [[ "$code" == 200 ]]; then
        _tsimage_ok "/readyz answers 200"
    else
        _tsimage_fail "/readyz answers $code" || bad=1
    fi

    pid="$(docker inspect -f '{{.State.Pid}}' "$name")"
    local ids="$TS_IMAGE_UID $TS_IMAGE_UID $TS_IMAGE_UID $TS_IMAGE_UID"
    if [[ "$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")" == "$ids" &&
        "$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")" == "$ids" ]]; then
        _tsimage_ok "the main process (host pid $pid) runs as uid and gid $TS_IMAGE_UID"
    else
        _tsimage_fail "the main process runs as: $(grep -E '^(Uid|Gid):' "/proc/$pid/status" | tr '\n\t' '  ')" || bad=1
    fi
    code="$(docker inspect -f '{{.Config.User}}' "$TS_IMAGE_TAG")"
    if [[ "$code" == "$TS_IMAGE_UID:$TS_IMAGE_UID" ]]; then
        _tsimage_ok "docker inspect: User $code"
    else
        _tsimage_fail "docker inspect: User is '$code'" || bad=1
    fi

    reply="$(_tsimage_graphql "$port" '{"query":"{ task(id: \"1\") { id } }"}' "")"
    code="$(_tsimage_json 'd["errors"][0]["extensions"]["code"]' <<<"$reply" 2>/dev/null || true)"
    if [[ "$code" == UNAUTHENTICATED ]]; then
        _tsimage_ok "a query without a token is UNAUTHENTICATED"
    else
        _tsimage_fail "a query without a token answered: $reply" || bad=1
    fi

    token="$(docker run --rm --label "$TS_IMAGE_LABEL" --network host -e "JWT_SECRET=$secret" \
        "$TS_IMAGE_TAG" token --sub image-check)" || token=""
    reply="$(_tsimage_graphql "$port" '{"query":"mutation { createTask(input: {title: \"Built and run by scripts/lib/image.sh\", priority: HIGH, tags: [\"image\"]}) { id } }"}' "$token")"
    id="$(_tsimage_json 'd["data"]["createTask"]["id"]' <<<"$reply" 2>/dev/null || true)"
    if [[ -z "$token" || -z "$id" ]]; then
        _tsimage_fail "createTask with a token from \`taskstream token\` answered: $reply" || bad=1
    else
        reply="$(_tsimage_graphql "$port" "{\"query\":\"query(\$id: ID!) { task(id: \$id) { title priority tags { name } } }\",\"variables\":{\"id\":\"$id\"}}" "$token")"
        if [[ "$(_tsimage_json 'json.dumps(d["data"]["task"], sort_keys=True)' <<<"$reply" 2>/dev/null)" == \
            '{"priority": "HIGH", "tags": [{"name": "image"}], "title": "Built and run by scripts/lib/image.sh"}' ]]; then
            _tsimage_ok "createTask, then task(id) reads it back (token from the image's \`taskstream token\`)"
        else
            _tsimage_fail "task(id: $id) answered: $reply" || bad=1
        fi
    fi

    code=""
    if docker stop -t 30 "$name" >/dev/null && code="$(docker inspect -f '{{.State.ExitCode}}' "$name")" && [[ "$code" == 0 ]]; then
        _tsimage_ok "SIGTERM (docker stop) ends it with status 0"
    else
        _tsimage_fail "after docker stop the exit status is ${code:-unknown}" || bad=1
    fi
    if reply="$(docker logs "$name" 2>&1 | python3 -c "$TS_IMAGE_JSON_LOG_PY")"; then
        _tsimage_ok "its log is JSON lines: $reply"
    else
        _tsimage_fail "its log is not JSON lines: $reply" || bad=1
    fi
    ((bad == 0)) || _tsimage_show_logs "$name"
    return "$bad"
}

# The gateway started with DATABASE_URL $1 must exit non-zero within a minute, its log saying $2
# and never the password $3.
_tsimage_expect_refusal() {
    local url="$1" expected="$2" secret="$3" name code log
    name="taskstream-image-check-$$-refused-$RANDOM"
    _tsimage_start "$name" -e "DATABASE_URL=$url" -e "LISTEN_ADDR=127.0.0.1:$(_tsimage_free_port)" "$TS_IMAGE_TAG" || return 1
    code="$(timeout 60 docker wait "$name")" || code="still running after 60 s"
    log="$(docker logs "$name" 2>&1)"
    if [[ "$code" == 0 || "$code" == still* ]]; then
        _tsimage_show_logs "$name"
        _tsimage_fail "DATABASE_URL=${url/$secret/***}: exit status $code"
    elif [[ "$log" != *"$expected"* || "$log" == *"$secret"* ]]; then
        _tsimage_show_logs "$name"
        _tsimage_fail "DATABASE_URL=${url/$secret/***}: the log does not say '$expected', or shows the password"
    else
        _tsimage_ok "DATABASE_URL=${url/$secret/***} exits with status $code: $(grep -F "$expected" <<<"$log" | head -n 1 | cut -c1-160)"
    fi
}

_tsimage_checks() {
    local failed=() secret=hunter2-image-check
    _tsimage_say "checking the image"
    _tsimage_check_layering || failed+=(layering)
    _tsimage_check_binaries || failed+=(binaries)
    _tsimage_check_gateway || failed+=(gateway)
    _tsimage_expect_refusal "mysql://taskstream:$secret@127.0.0.1:3306/taskstream" \
        "is not a database Taskstream supports" "$secret" || failed+=(unsupported-database-url)
    local closed
    closed="$(_tsimage_free_port)"
    _tsimage_expect_refusal "postgres://taskstream:$secret@127.0.0.1:$closed/taskstream" \
        "cannot reach PostgreSQL at 127.0.0.1:$closed" "$secret" || failed+=(unreachable-database)
    if ((${#failed[@]})); then
        _tsimage_warn "FAILED: ${failed[*]}"
        return 1
    fi
}

# ---------------------------------------------------------------- entry point

_tsimage_remove_containers() {
    docker ps -aq --filter "label=$TS_IMAGE_LABEL" | xargs -r docker rm -f >/dev/null 2>&1
}

_tsimage_main() {
    local start=$SECONDS phase base_s build_s rc=0
    TS_IMAGE_CACHE="$(_tsdocker_cache)" || return 1
    # One image check at a time on a machine: they share the daemon, the tags and the cache.
    exec {TS_IMAGE_LOCK_FD}>"$TS_IMAGE_CACHE/lock"
    if ! flock -n "$TS_IMAGE_LOCK_FD"; then
        _tsimage_say "waiting for another image check to finish (lock $TS_IMAGE_CACHE/lock)"
        flock -w 5400 "$TS_IMAGE_LOCK_FD" || return 1
    fi
    ts_docker_provision || return 1
    # Also the leftovers of a run that was killed.
    _tsimage_remove_containers
    ts_cleanup_add _tsimage_remove_containers
    phase=$SECONDS
    if [[ ! "${TASKSTREAM_IMAGE_BASE:-local}" =~ ^(local|official)$ ]]; then
        _tsimage_warn "TASKSTREAM_IMAGE_BASE must be local or official, not '$TASKSTREAM_IMAGE_BASE'"
        return 1
    elif [[ "${TASKSTREAM_IMAGE_BASE:-local}" == official ]]; then
        TS_DOCKER_BUILDER_IMAGE="$(sed -n 's/^ARG BUILDER_IMAGE=//p' "$TS_IMAGE_REPO_ROOT/infra/docker/Dockerfile")"
        TS_DOCKER_RUNTIME_IMAGE="$(sed -n 's/^ARG RUNTIME_IMAGE=//p' "$TS_IMAGE_REPO_ROOT/infra/docker/Dockerfile")"
        _tsimage_note "TASKSTREAM_IMAGE_BASE=official: $TS_DOCKER_BUILDER_IMAGE and $TS_DOCKER_RUNTIME_IMAGE, pulled by the build"
    else
        ts_docker_base_images || return 1
    fi
    base_s=$((SECONDS - phase))
    phase=$SECONDS
    _tsimage_build || return 1
    build_s=$((SECONDS - phase))
    phase=$SECONDS
    _tsimage_database || return 1
    _tsimage_checks || rc=1
    _tsimage_say "times: base images ${base_s} s, docker build ${build_s} s, checks $((SECONDS - phase)) s, all $((SECONDS - start)) s"
    return "$rc"
}

_tsimage_run_cleanups() {
    local rc=$? i
    for ((i = ${#TS_CLEANUPS[@]} - 1; i >= 0; i--)); do
        "${TS_CLEANUPS[i]}" || true
    done
    return "$rc"
}

ts_image_check() {
    (
        # scripts/test runs each step in a subshell, where the script's EXIT trap (which runs what
        # ts_cleanup_add registered) does not fire: this subshell keeps and runs its own list.
        TS_CLEANUPS=()
        ts_cleanup_add() { TS_CLEANUPS+=("$1"); }
        trap _tsimage_run_cleanups EXIT
        trap 'exit 129' HUP
        trap 'exit 130' INT
        trap 'exit 143' TERM
        _tsimage_main
    )
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
        # shellcheck source=scripts/lib/postgres.sh
        source "$TS_IMAGE_REPO_ROOT/scripts/lib/postgres.sh"
        ts_postgres_provision
    fi
    ts_image_check
fi
