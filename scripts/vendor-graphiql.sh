#!/usr/bin/env bash
#
# Re-downloads the GraphiQL page's vendored browser bundles into graphql/graphiql/
# and checks them against graphql/graphiql/SHA256SUMS.
#
#   scripts/vendor-graphiql.sh           # fetch the pinned versions, verify, install
#   scripts/vendor-graphiql.sh --check   # only verify the committed files (no network)
#   scripts/vendor-graphiql.sh --update  # fetch, then rewrite SHA256SUMS (after a bump)
#
# The files come from the npm registry through `npm pack` (the tarballs npm
# itself would install, checked against the registry's integrity hashes), are
# unpacked in a temporary directory and copied without any change. The gateway
# embeds them (graphql/src/graphiql.rs), so bumping a version means editing the
# versions below, the constants in graphiql.rs and graphql/graphiql/README.md,
# then running this with --update and the tests.

set -euo pipefail

GRAPHIQL_VERSION=3.9.0
REACT_VERSION=18.3.1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$REPO_ROOT/graphql/graphiql"

# package@version  path inside the tarball  file name in $DEST
FILES=(
  "graphiql@$GRAPHIQL_VERSION package/graphiql.min.js graphiql.min.js"
  "graphiql@$GRAPHIQL_VERSION package/graphiql.min.css graphiql.min.css"
  "graphiql@$GRAPHIQL_VERSION package/LICENSE LICENSE.graphiql"
  "react@$REACT_VERSION package/umd/react.production.min.js react.production.min.js"
  "react@$REACT_VERSION package/LICENSE LICENSE.react"
  "react-dom@$REACT_VERSION package/umd/react-dom.production.min.js react-dom.production.min.js"
)

verify() {
  (cd "$1" && sha256sum --check --strict --quiet "$DEST/SHA256SUMS")
}

mode="${1:-install}"
case "$mode" in
  --check)
    verify "$DEST"
    echo "graphiql: the files in $DEST match SHA256SUMS"
    exit 0
    ;;
  install | --update) ;;
  *)
    echo "usage: $0 [--check|--update]" >&2
    exit 2
    ;;
esac

command -v npm >/dev/null || { echo "graphiql: npm is needed" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

declare -A unpacked=()
for entry in "${FILES[@]}"; do
  read -r package inside name <<<"$entry"
  if [[ -z "${unpacked[$package]:-}" ]]; then
    dir="$work/${package//[@\/]/_}"
    mkdir -p "$dir"
    tarball="$(cd "$dir" && npm pack --silent --ignore-scripts "$package" | tail -n 1)"
    tar -xzf "$dir/$tarball" -C "$dir"
    unpacked[$package]="$dir"
  fi
  mkdir -p "$work/out"
  cp "${unpacked[$package]}/$inside" "$work/out/$name"
done

if [[ "$mode" == --update ]]; then
  (cd "$work/out" && sha256sum -- *) >"$DEST/SHA256SUMS"
  echo "graphiql: wrote $DEST/SHA256SUMS"
fi
verify "$work/out"
cp "$work/out/"* "$DEST/"
echo "graphiql: graphiql $GRAPHIQL_VERSION, react and react-dom $REACT_VERSION in $DEST, checked"
