#!/usr/bin/env bash
# Deploys one commit's image to one environment with Helm 4, as release.yml does. It can also be
# run by hand against a cluster in the current kube context (docs/ROLLBACK.md).
#
#   DEPLOY_ENV=staging IMAGE_REGISTRY=myacr.azurecr.io IMAGE_TAG=<git sha> \
#     IMAGE_DIGEST=sha256:... .github/scripts/helm-deploy.sh
#
# Steps:
#   1. A release left in pending-upgrade/pending-rollback (a cancelled or killed earlier run)
#      blocks every later upgrade ("another operation is in progress"): roll it back first.
#   2. Record the current deployed revision (the rollback target if a later check fails).
#   3. The terraform -> Helm hand-off: terraform-values.py turns the environment's terraform
#      outputs (workload identity ids, the Key Vault's generated name, the registry, Entra ID
#      token verification) and PUBLIC_URL's host into a values file, passed after
#      values-$DEPLOY_ENV.yaml. Without it the chart refuses to render (empty ids).
#   4. helm upgrade --install with --rollback-on-failure (Helm 4's name for --atomic): when the
#      migration hook, the rollout or the wait fails, Helm itself restores the previous revision.
#   5. helm test (the chart's test hook); if it fails, roll back to the recorded revision.
#
# Environment:
#   DEPLOY_ENV         staging | production (selects values-$DEPLOY_ENV.yaml)     required
#   IMAGE_REGISTRY     registry (chart value image.registry), e.g. myacr.azurecr.io   required
#   IMAGE_TAG          image tag, the full commit SHA (image.tag)                 required
#   IMAGE_DIGEST       sha256:... (image.digest; the chart then pulls by digest)  recommended
#   IMAGE_REPOSITORY   repository in the registry (image.repository)  default taskstream
#   TERRAFORM_OUTPUTS  `terraform output -json` of this environment without its sensitive
#                      outputs (terraform-values.py --strip-sensitive; the environment
#                      variable of the same name, docs/CICD.md)            required, or:
#   TERRAFORM_OUTPUTS_FILE  a file holding it
#   PUBLIC_URL         https://HOST the Ingress serves (ingress host, TLS certificate) recommended
#   RELEASE_NAME       Helm release name                          default taskstream
#   NAMESPACE          Kubernetes namespace                       default taskstream
#   CHART_DIR          chart directory                            default infra/helm/taskstream
#   HELM_TIMEOUT       how long Helm waits for hooks and rollout  default 15m
#   HELM_TEST          run `helm test` after the upgrade (true|false) default true
#   CREATE_NAMESPACE   pass --create-namespace (true|false)       default false: the deploy
#                      identity is only admin of its namespace, which the one-time setup
#                      creates (docs/CICD.md); creating it needs cluster-wide rights
#
# Writes `previous_revision` and `revision` to $GITHUB_OUTPUT when it is set.
set -euo pipefail

: "${DEPLOY_ENV:?DEPLOY_ENV (staging or production) is required}"
: "${IMAGE_REGISTRY:?IMAGE_REGISTRY is required}"
: "${IMAGE_TAG:?IMAGE_TAG is required}"
IMAGE_DIGEST="${IMAGE_DIGEST:-}"
IMAGE_REPOSITORY="${IMAGE_REPOSITORY:-taskstream}"
RELEASE_NAME="${RELEASE_NAME:-taskstream}"
NAMESPACE="${NAMESPACE:-taskstream}"
CHART_DIR="${CHART_DIR:-infra/helm/taskstream}"
HELM_TIMEOUT="${HELM_TIMEOUT:-15m}"
HELM_TEST="${HELM_TEST:-true}"
CREATE_NAMESPACE="${CREATE_NAMESPACE:-false}"
VALUES_FILE="$CHART_DIR/values-$DEPLOY_ENV.yaml"
TERRAFORM_OUTPUTS="${TERRAFORM_OUTPUTS:-}"
TERRAFORM_OUTPUTS_FILE="${TERRAFORM_OUTPUTS_FILE:-}"
PUBLIC_URL="${PUBLIC_URL:-}"
HANDOFF="$(dirname "${BASH_SOURCE[0]}")/terraform-values.py"

say() { printf '==> %s\n' "$*"; }
fail() {
    printf '::error::%s\n' "$*"
    exit 1
}
output() {
    if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
        printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
    fi
}

# Prints the release's status (deployed, failed, pending-upgrade, ...) or nothing.
release_status() {
    helm status "$RELEASE_NAME" --namespace "$NAMESPACE" --output json 2>/dev/null |
        jq -r '.info.status // empty' || true
}

# Prints the newest revision whose status is "deployed", or nothing.
deployed_revision() {
    helm history "$RELEASE_NAME" --namespace "$NAMESPACE" --output json 2>/dev/null |
        jq -r '[.[] | select(.status == "deployed")] | last | .revision // empty' || true
}

[[ -f "$VALUES_FILE" ]] || fail "no values file $VALUES_FILE for environment $DEPLOY_ENV"
helm version

# 1. Recover from a release stuck in a pending state.
status="$(release_status)"
case "$status" in
    pending-upgrade | pending-rollback)
        say "release $RELEASE_NAME is stuck in $status (an interrupted earlier run): rolling back first"
        helm rollback "$RELEASE_NAME" --namespace "$NAMESPACE" --wait=watcher --timeout "$HELM_TIMEOUT"
        ;;
    pending-install)
        fail "release $RELEASE_NAME is stuck in pending-install: inspect it and run 'helm uninstall $RELEASE_NAME -n $NAMESPACE' (docs/ROLLBACK.md)"
        ;;
esac

# 2. The revision to return to if a check after the upgrade fails.
previous="$(deployed_revision)"
say "currently deployed revision: ${previous:-none (first install)}"
output previous_revision "$previous"

# 3. The terraform -> Helm hand-off.
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
if [[ -z "$TERRAFORM_OUTPUTS_FILE" ]]; then
    [[ -n "$TERRAFORM_OUTPUTS" ]] ||
        fail "TERRAFORM_OUTPUTS is not set: store this environment's terraform outputs (docs/CICD.md, setup step 4)"
    TERRAFORM_OUTPUTS_FILE="$workdir/terraform-outputs.json"
    printf '%s\n' "$TERRAFORM_OUTPUTS" >"$TERRAFORM_OUTPUTS_FILE"
fi
handoff_args=(--release "$RELEASE_NAME" --namespace "$NAMESPACE")
if [[ -n "$PUBLIC_URL" ]]; then
    handoff_args+=(--public-url "${PUBLIC_URL%/}")
fi
python3 "$HANDOFF" "${handoff_args[@]}" "$TERRAFORM_OUTPUTS_FILE" >"$workdir/terraform-values.json" ||
    fail "the terraform -> Helm hand-off failed (see above)"
say "values from terraform: $(jq -c '{registry: .image.registry, keyVault: .keyVault.name, clientId: .workloadIdentity.clientId, host: .ingress.hosts[0].host}' "$workdir/terraform-values.json")"

# 4. Upgrade; Helm rolls back by itself when the upgrade fails.
namespace_args=(--namespace "$NAMESPACE")
if [[ "$CREATE_NAMESPACE" == true ]]; then
    namespace_args+=(--create-namespace)
fi
image_args=(
    --set-string "image.registry=$IMAGE_REGISTRY"
    --set-string "image.repository=$IMAGE_REPOSITORY"
    --set-string "image.tag=$IMAGE_TAG"
)
if [[ -n "$IMAGE_DIGEST" ]]; then
    # The chart pulls by digest when one is given: exactly the bytes CI built and tested.
    [[ "$IMAGE_DIGEST" =~ ^sha256:[0-9a-f]{64}$ ]] || fail "IMAGE_DIGEST is not a sha256 digest: $IMAGE_DIGEST"
    image_args+=(--set-string "image.digest=$IMAGE_DIGEST")
fi
say "helm upgrade --install $RELEASE_NAME ($DEPLOY_ENV, image $IMAGE_REGISTRY/$IMAGE_REPOSITORY:$IMAGE_TAG${IMAGE_DIGEST:+@$IMAGE_DIGEST})"
helm upgrade "$RELEASE_NAME" "$CHART_DIR" \
    --install \
    "${namespace_args[@]}" \
    --values "$VALUES_FILE" \
    --values "$workdir/terraform-values.json" \
    "${image_args[@]}" \
    --rollback-on-failure \
    --cleanup-on-fail \
    --wait=watcher --wait-for-jobs \
    --timeout "$HELM_TIMEOUT" \
    --history-max 20 \
    --description "$DEPLOY_ENV ${IMAGE_TAG:0:12}${GITHUB_RUN_ID:+ (run $GITHUB_RUN_ID)}"

revision="$(deployed_revision)"
say "deployed revision $revision"
output revision "$revision"

# 5. The chart's own test hook, against the new revision.
if [[ "$HELM_TEST" == true ]]; then
    say "helm test $RELEASE_NAME"
    if ! helm test "$RELEASE_NAME" --namespace "$NAMESPACE" --logs --timeout 5m; then
        if [[ -n "$previous" ]]; then
            say "helm test failed: rolling back to revision $previous"
            helm rollback "$RELEASE_NAME" "$previous" --namespace "$NAMESPACE" \
                --wait=watcher --timeout "$HELM_TIMEOUT"
            # The workflow's own rollback step must not roll back a second time.
            output revision ""
        fi
        fail "helm test failed for $RELEASE_NAME revision $revision"
    fi
fi
