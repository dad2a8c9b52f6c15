#!/usr/bin/env bash
# Smoke test of a deployed Taskstream through its public endpoint, as release.yml runs it after
# each deploy (and rollback.yml after a rollback). Read-only: it creates nothing.
#
#   BASE_URL=https://staging.taskstream.example.com .github/scripts/smoke-test.sh
#
# Checks, in order:
#   1. GET /readyz answers 200 (the database and the gateway's own components; the broker is
#      reported in the body, not required); retried while the ingress, the new pods and the
#      first TLS certificate settle, up to SMOKE_READY_TIMEOUT seconds;
#   2. GET /healthz answers 200;
#   3. POST /graphql without a token is refused: HTTP 401, extensions.code UNAUTHENTICATED;
#   4. POST /graphql with a token answers `{ me { id } tasks(first: 1) { totalCount } }`
#      without errors, for the token's user.
# Every request goes over HTTPS with certificate verification (no -k): a missing or invalid
# certificate fails the test.
#
# The token for 4 is fresh on every run, never a stored one that could expire:
#   - with Entra ID token verification (terraform's jwt output, in TERRAFORM_OUTPUTS), an access
#     token for the API (scope <audience>/.default) from the identity the job is logged in as
#     (`az account get-access-token`; in the workflows the deploy identity, over OIDC);
#   - otherwise minted inside the cluster by the gateway binary itself, `taskstream token --sub
#     ci-smoke --hours 1`, signed with the pod's JWT_SECRET; nothing secret leaves the cluster
#     except that one-hour token, which is masked.
# SMOKE_TEST_TOKEN, when set, is used instead (by hand only).
#
# Environment:
#   BASE_URL               public base URL of the environment                   required
#   TERRAFORM_OUTPUTS      the environment's terraform outputs (Entra ID audience) optional
#   SMOKE_TEST_TOKEN       bearer token to use                                  optional
#   NAMESPACE              namespace of the release (token minting)             default taskstream
#   GATEWAY_DEPLOYMENT     gateway Deployment (token minting)                   default taskstream-gateway
#   SMOKE_READY_TIMEOUT    seconds to wait for /readyz                          default 300
set -euo pipefail

: "${BASE_URL:?BASE_URL (the public URL of the environment, variable PUBLIC_URL) is required}"
base="${BASE_URL%/}"
NAMESPACE="${NAMESPACE:-taskstream}"
GATEWAY_DEPLOYMENT="${GATEWAY_DEPLOYMENT:-taskstream-gateway}"
SMOKE_READY_TIMEOUT="${SMOKE_READY_TIMEOUT:-300}"
SUBJECT=ci-smoke

say() { printf '==> %s\n' "$*"; }
fail() {
    printf '::error::smoke test: %s\n' "$*"
    exit 1
}
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

# http_status METHOD PATH [curl args...]: prints the status code; the body goes to $workdir/body.
http_status() {
    local method="$1" path="$2" code
    shift 2
    : >"$workdir/body"
    # curl prints 000 itself when it cannot connect (and exits non-zero).
    code="$(curl --silent --show-error --max-time 20 --request "$method" \
        --output "$workdir/body" --write-out '%{http_code}' "$@" "$base$path")" || true
    printf '%s\n' "${code:-000}"
}

# 1. /readyz, retried.
say "GET $base/readyz (up to ${SMOKE_READY_TIMEOUT}s)"
deadline=$((SECONDS + SMOKE_READY_TIMEOUT))
while true; do
    code="$(http_status GET /readyz)"
    [[ "$code" == 200 ]] && break
    if ((SECONDS >= deadline)); then
        cat "$workdir/body" 2>/dev/null || true
        fail "/readyz answered $code, not 200, for ${SMOKE_READY_TIMEOUT}s"
    fi
    sleep 5
done
say "/readyz: 200 $(head -c 200 "$workdir/body")"

# 2. /healthz.
code="$(http_status GET /healthz)"
[[ "$code" == 200 ]] || fail "/healthz answered $code"
say "/healthz: 200"

query='{"query":"{ me { id } tasks(first: 1) { totalCount } }"}'

# 3. No token: refused.
code="$(http_status POST /graphql -H 'Content-Type: application/json' --data "$query")"
error_code="$(jq -r '.errors[0].extensions.code // empty' "$workdir/body" 2>/dev/null || true)"
if [[ "$code" != 401 || "$error_code" != UNAUTHENTICATED ]]; then
    fail "POST /graphql without a token answered $code ${error_code:-(no error code)}, expected 401 UNAUTHENTICATED"
fi
say "POST /graphql without a token: 401 UNAUTHENTICATED"

# 4. With a token: answered.
token="${SMOKE_TEST_TOKEN:-}"
audience="$(jq -r '.jwt.value.audience // empty' <<<"${TERRAFORM_OUTPUTS:-{\}}" 2>/dev/null || true)"
if [[ -n "$token" ]]; then
    SUBJECT=""
    say "using SMOKE_TEST_TOKEN"
elif [[ -n "$audience" ]]; then
    SUBJECT=""
    say "getting an Entra ID access token for $audience as the logged-in identity"
    token="$(az account get-access-token --scope "$audience/.default" --query accessToken --output tsv)" ||
        fail "could not get an access token for $audience (docs/CICD.md: the API's app registration)"
else
    say "minting a one-hour token in deploy/$GATEWAY_DEPLOYMENT (taskstream token --sub $SUBJECT)"
    token="$(kubectl exec --namespace "$NAMESPACE" "deploy/$GATEWAY_DEPLOYMENT" -- \
        taskstream token --sub "$SUBJECT" --hours 1)" ||
        fail "could not mint a token in the gateway pod (no JWT_SECRET there? with Entra ID tokens set terraform api_client_id and refresh TERRAFORM_OUTPUTS)"
fi
token="${token//[$'\r\n']/}"
if [[ -n "${GITHUB_ACTIONS:-}" ]]; then
    echo "::add-mask::$token"
fi

code="$(http_status POST /graphql -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $token" --data "$query")"
[[ "$code" == 200 ]] || fail "POST /graphql with a token answered $code: $(head -c 500 "$workdir/body")"
jq -e '(.errors // []) | length == 0' "$workdir/body" >/dev/null ||
    fail "GraphQL errors: $(jq -c '.errors' "$workdir/body")"
me="$(jq -r '.data.me.id // empty' "$workdir/body")"
total="$(jq -r '.data.tasks.totalCount // empty' "$workdir/body")"
[[ -n "$me" && -n "$total" ]] || fail "unexpected GraphQL answer: $(head -c 500 "$workdir/body")"
if [[ -n "$SUBJECT" && "$me" != "$SUBJECT" ]]; then
    fail "GraphQL answered for user $me, expected $SUBJECT"
fi
say "POST /graphql: me.id=$me, tasks.totalCount=$total"
say "smoke test passed for $base"
