# shellcheck shell=bash
#
# Docker for the Taskstream test suite, on a machine that reaches package registries but no image
# registry: a daemon without bridge networking, and local stand-ins for the Dockerfile's base
# images made from Debian's packages. Sourced by scripts/lib/image.sh (the `image` step of
# scripts/test), which calls:
#
#   ts_docker_provision     a daemon that answers `docker info`
#   ts_docker_base_images   sets TS_DOCKER_BUILDER_IMAGE and TS_DOCKER_RUNTIME_IMAGE
#
# Cleanups are registered with ts_cleanup_add, which the caller defines.
#
# ts_docker_provision uses a daemon that answers as it is. Otherwise it apt-get installs Debian's
# docker.io when dockerd is missing (root only) and starts dockerd with --bridge=none
# --iptables=false --ip-masq=false (this machine has loopback only: every container must use
# --network host), niced (the build runs under it), logging to $TS_IMAGE_CACHE/dockerd.log; the
# cleanup stops it. Its state (/var/lib/docker: images, layer cache) stays for the next run.
#
# ts_docker_base_images makes, when their tag is missing (the tag holds the Debian suite, the
# host's rustc version and a hash of every input, so a new toolchain makes a new image and the
# old one is removed):
#   taskstream-local/builder  for rust:1.95-slim-bookworm: debootstrap bookworm (minbase) with
#                             ca-certificates, gcc and libc6-dev, as the official image has; the
#                             host's Rust toolchain (the sysroot of `rustc --print sysroot`,
#                             without its docs) in /usr/local/rust and CARGO_HOME=/usr/local/cargo,
#                             both on PATH; and the host's own CA certificates
#                             (/usr/local/share/ca-certificates: this network reaches crates.io
#                             through a proxy that re-signs TLS, which cargo must trust).
#   taskstream-local/runtime  for gcr.io/distroless/cc-debian12:nonroot: debootstrap bookworm
#                             (minbase) with ca-certificates and tzdata (glibc, libgcc and
#                             libstdc++ come with minbase), the user nonroot (65532) and
#                             SSL_CERT_FILE as distroless has them. Unlike distroless it has a
#                             shell, apt, dpkg and coreutils; nothing in the image or its checks
#                             may rely on them.
# debootstrap (apt-get installed when missing) builds each tree under $TS_IMAGE_CACHE, which is
# deleted once imported; downloaded packages stay in $TS_IMAGE_CACHE/debs.
#
# Environment:
#   TS_IMAGE_CACHE                 logs, package cache, trees (default $HOME/.cache/taskstream/image)
#   TASKSTREAM_IMAGE_MIRROR        Debian mirror (default http://deb.debian.org/debian)
#   TASKSTREAM_IMAGE_REBUILD_BASE=1  make the base images even if their tags exist (to pick up
#                                  Debian's updates)
#   DOCKER_HOST                    use this daemon; it must answer (none is started for it)

TS_DOCKER_SUITE=bookworm
TS_DOCKER_BUILDER_PACKAGES=ca-certificates,gcc,libc6-dev
TS_DOCKER_RUNTIME_PACKAGES=ca-certificates,tzdata
# Debian's place for a machine's own CA certificates.
TS_DOCKER_LOCAL_CAS=/usr/local/share/ca-certificates
# Bump when the way the base images are made changes: their tags change with it.
TS_DOCKER_RECIPE=1
# distroless's nonroot user.
TS_DOCKER_NONROOT=65532
TS_DOCKER_STARTED_PID=""
TS_DOCKER_TREES=()
TS_DOCKER_CHANGES=()

_tsdocker_say() { printf '==> docker: %s\n' "$*"; }
_tsdocker_note() { printf '    %s\n' "$*"; }
_tsdocker_warn() { printf '!!! docker: %s\n' "$*" >&2; }

_tsdocker_cache() {
    local dir="${TS_IMAGE_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/taskstream/image}"
    mkdir -p "$dir" && printf '%s\n' "$dir"
}

_tsdocker_apt_install() {
    local log
    if [[ "$(id -u)" != 0 ]]; then
        _tsdocker_warn "$* missing, and installing it needs root: apt-get install $*"
        return 1
    fi
    _tsdocker_say "installing Debian's $* (apt-get)"
    log="$(_tsdocker_cache)/apt.log" || return 1
    local apt=(apt-get install -y -q --no-install-recommends "$@")
    if DEBIAN_FRONTEND=noninteractive "${apt[@]}" >"$log" 2>&1 </dev/null; then
        return 0
    fi
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive "${apt[@]}"; } >"$log" 2>&1 </dev/null; then
        _tsdocker_warn "apt-get install $* failed; the end of $log:"
        tail -n 20 "$log" >&2
        return 1
    fi
}

# Runs a command with none of this shell's descriptors above 2: a daemon must not hold, say, the
# caller's lock file open after the caller is gone.
_tsdocker_exec_detached() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd="${fd##*/}"
        if ((fd > 2)); then
            eval "exec $fd>&-"
        fi
    done
    exec "$@"
}

_tsdocker_answers() { timeout 20 docker info >/dev/null 2>&1; }

ts_docker_provision() {
    if command -v docker >/dev/null && _tsdocker_answers; then
        _tsdocker_note "using the running daemon ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
        return 0
    fi
    if [[ -n "${DOCKER_HOST:-}" ]]; then
        _tsdocker_warn "DOCKER_HOST=$DOCKER_HOST does not answer docker info"
        return 1
    fi
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
        _tsdocker_apt_install docker.io || return 1
    fi
    local log deadline=$((SECONDS + 60))
    log="$(_tsdocker_cache)/dockerd.log" || return 1
    _tsdocker_say "starting dockerd without bridge networking (log: $log)"
    # In a session of its own, so that Ctrl-C leaves it to the cleanup (which first removes the
    # containers through it).
    _tsdocker_exec_detached setsid nice -n 10 dockerd --bridge=none --iptables=false --ip-masq=false \
        >"$log" 2>&1 </dev/null &
    TS_DOCKER_STARTED_PID=$!
    ts_cleanup_add ts_docker_stop_started
    until _tsdocker_answers; do
        if ! kill -0 "$TS_DOCKER_STARTED_PID" 2>/dev/null || ((SECONDS > deadline)); then
            _tsdocker_warn "dockerd did not come up; the end of $log:"
            tail -n 30 "$log" >&2
            return 1
        fi
        sleep 1
    done
    _tsdocker_note "started dockerd $(docker version -f '{{.Server.Version}}') (pid $TS_DOCKER_STARTED_PID)"
}

# Stops the dockerd that ts_docker_provision started, if it did.
ts_docker_stop_started() {
    local pid="$TS_DOCKER_STARTED_PID" deadline=$((SECONDS + 30))
    [[ -n "$pid" ]] || return 0
    TS_DOCKER_STARTED_PID=""
    _tsdocker_say "stopping the dockerd started for this run"
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS > deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 1
    done
}

# "REPOSITORY:TAG" of base image KIND: suite, the inputs' version and a hash of all inputs.
_tsdocker_base_tag() {
    local kind="$1" inputs version=""
    inputs="recipe $TS_DOCKER_RECIPE suite $TS_DOCKER_SUITE"
    if [[ "$kind" == builder ]]; then
        version="-rust$(rustc --version | cut -d' ' -f2)" || return 1
        inputs+=" packages $TS_DOCKER_BUILDER_PACKAGES rustc $(rustc -vV | tr '\n' ' ')"
        inputs+=" local CAs $(find "$TS_DOCKER_LOCAL_CAS" -name '*.crt' -type f -exec cat {} + 2>/dev/null | sha256sum)"
    else
        inputs+=" packages $TS_DOCKER_RUNTIME_PACKAGES"
    fi
    printf 'taskstream-local/%s:%s%s-%s\n' "$kind" "$TS_DOCKER_SUITE" "$version" \
        "$(printf '%s' "$inputs" | sha256sum | cut -c1-12)"
}

# Deletes the debootstrap trees, first unmounting whatever a failed debootstrap left mounted in
# them, and never crossing into another file system.
_tsdocker_remove_trees() {
    local tree mount
    for tree in "${TS_DOCKER_TREES[@]}"; do
        [[ -d "$tree" ]] || continue
        while read -r mount; do
            umount -l "$mount" 2>/dev/null || true
        done < <(awk -v t="$tree/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r)
        rm -rf --one-file-system "$tree"
    done
    TS_DOCKER_TREES=()
}

# debootstrap TREE PACKAGES: a minbase Debian tree with these packages, apt's caches removed.
_tsdocker_debootstrap() {
    local tree="$1" packages="$2" cache log
    cache="$(_tsdocker_cache)" || return 1
    log="$tree.log"
    mkdir -p "$cache/debs"
    if ! debootstrap --variant=minbase --include="$packages" --cache-dir="$cache/debs" \
        "$TS_DOCKER_SUITE" "$tree" "${TASKSTREAM_IMAGE_MIRROR:-http://deb.debian.org/debian}" \
        >"$log" 2>&1 </dev/null; then
        _tsdocker_warn "debootstrap failed; the end of $log:"
        tail -n 30 "$log" >&2
        return 1
    fi
    rm -f "$log"
    rm -rf "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/*.bin "$tree"/var/cache/apt/archives/*.deb
}

# The builder's additions to a debootstrap tree, and to TS_DOCKER_CHANGES (`docker import
# --change` instructions).
_tsdocker_builder_tree() {
    local tree="$1" sysroot out
    if [[ -n "$(find "$TS_DOCKER_LOCAL_CAS" -name '*.crt' -type f 2>/dev/null)" ]]; then
        _tsdocker_note "adding the host's own CA certificates ($TS_DOCKER_LOCAL_CAS)"
        cp -R "$TS_DOCKER_LOCAL_CAS/." "$tree/usr/local/share/ca-certificates/"
        # Its output is one harmless rehash warning about the bundle; shown only on failure.
        out="$(chroot "$tree" update-ca-certificates 2>&1)" || {
            printf '%s\n' "$out" >&2
            return 1
        }
    fi
    sysroot="$(rustc --print sysroot)" || return 1
    _tsdocker_note "adding the Rust toolchain $sysroot as /usr/local/rust"
    mkdir -p "$tree/usr/local/rust" "$tree/usr/local/cargo"
    tar -C "$sysroot" --exclude=./share/doc -cf - . | tar -C "$tree/usr/local/rust" --no-same-owner -xf - || return 1
    TS_DOCKER_CHANGES+=("ENV CARGO_HOME=/usr/local/cargo"
        "ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        "ENV RUST_VERSION=$(rustc --version | cut -d' ' -f2)" 'CMD ["bash"]')
}

# The runtime's additions to a debootstrap tree, and to TS_DOCKER_CHANGES.
_tsdocker_runtime_tree() {
    local tree="$1" id="$TS_DOCKER_NONROOT"
    printf 'nonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' "$id" "$id" >>"$tree/etc/passwd"
    printf 'nonroot:x:%s:\n' "$id" >>"$tree/etc/group"
    install -d -m 0700 -o "$id" -g "$id" "$tree/home/nonroot"
    TS_DOCKER_CHANGES+=("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" "USER $id:$id" "WORKDIR /home/nonroot")
}

# Makes base image KIND (builder or runtime) as TAG.
_tsdocker_make_base() {
    local kind="$1" tag="$2" tree change start=$SECONDS changes=() packages
    if [[ "$(id -u)" != 0 ]]; then
        _tsdocker_warn "$tag is missing, and making it needs root (debootstrap, chroot)"
        return 1
    fi
    if ! command -v debootstrap >/dev/null; then
        _tsdocker_apt_install debootstrap debian-archive-keyring || return 1
    fi
    tree="$(mktemp -d "$(_tsdocker_cache)/rootfs-$kind.XXXXXX")" || return 1
    TS_DOCKER_TREES+=("$tree")
    ts_cleanup_add _tsdocker_remove_trees
    _tsdocker_say "making $tag (debootstrap $TS_DOCKER_SUITE)"
    packages="$TS_DOCKER_RUNTIME_PACKAGES"
    [[ "$kind" == runtime ]] || packages="$TS_DOCKER_BUILDER_PACKAGES"
    _tsdocker_debootstrap "$tree" "$packages" || return 1
    TS_DOCKER_CHANGES=("LABEL dev.taskstream.base=$kind")
    "_tsdocker_${kind}_tree" "$tree" || return 1
    for change in "${TS_DOCKER_CHANGES[@]}"; do
        changes+=(--change "$change")
    done
    tar --numeric-owner -C "$tree" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . |
        docker import "${changes[@]}" - "$tag" >/dev/null || return 1
    _tsdocker_remove_trees
    _tsdocker_note "$tag: $(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec) ($((SECONDS - start)) s)"
}

ts_docker_base_images() {
    local kind tag old
    command -v rustc >/dev/null || {
        _tsdocker_warn "rustc is not on PATH: the builder image takes the host's toolchain"
        return 1
    }
    for kind in builder runtime; do
        tag="$(_tsdocker_base_tag "$kind")" || return 1
        if [[ "${TASKSTREAM_IMAGE_REBUILD_BASE:-}" == 1 ]] || ! docker image inspect "$tag" >/dev/null 2>&1; then
            _tsdocker_make_base "$kind" "$tag" || return 1
        else
            _tsdocker_note "base image $tag: cached"
        fi
        # Earlier versions (another rustc, another recipe) only take space.
        for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "taskstream-local/$kind"); do
            [[ "$old" == "$tag" ]] || docker rmi "$old" >/dev/null 2>&1 || true
        done
        # shellcheck disable=SC2034 # read by the caller
        if [[ "$kind" == builder ]]; then TS_DOCKER_BUILDER_IMAGE="$tag"; else TS_DOCKER_RUNTIME_IMAGE="$tag"; fi
    done
}
