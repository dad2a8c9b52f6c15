#!/usr/bin/env bash
# Rolls a Taskstream Helm release back and waits for it, as release.yml (after a failed smoke
# test) and rollback.yml (by hand) do. docs/ROLLBACK.md explains when and how.
#
#   REVISION=7 .github/scripts/helm-rollback.sh     # to revision 7
#   .github/scripts/helm-rollback.sh                # to the previous revision
#
# Environment:
#   REVISION        revision to return to; empty or 0 = the previous one    default empty
#   RELEASE_NAME    Helm release name                                       default taskstream
#   NAMESPACE       Kubernetes namespace                                    default taskstream
#   HELM_TIMEOUT    how long to wait for the rollout                        default 15m
set -euo pipefail

RELEASE_NAME="${RELEASE_NAME:-taskstream}"
NAMESPACE="${NAMESPACE:-taskstream}"
HELM_TIMEOUT="${HELM_TIMEOUT:-15m}"
REVISION="${REVISION:-}"

if [[ -n "$REVISION" && ! "$REVISION" =~ ^[0-9]+$ ]]; then
    printf '::error::REVISION must be a revision number, got %q\n' "$REVISION"
    exit 2
fi

echo "==> history of $RELEASE_NAME in $NAMESPACE before the rollback"
helm history "$RELEASE_NAME" --namespace "$NAMESPACE" --max 10

args=("$RELEASE_NAME")
if [[ -n "$REVISION" && "$REVISION" != 0 ]]; then
    args+=("$REVISION")
fi
echo "==> helm rollback ${args[*]}"
helm rollback "${args[@]}" --namespace "$NAMESPACE" --wait=watcher --timeout "$HELM_TIMEOUT"

echo "==> history after the rollback"
helm history "$RELEASE_NAME" --namespace "$NAMESPACE" --max 3
# The image that now runs, so the log says exactly what was restored.
kubectl get deployments --namespace "$NAMESPACE" \
    --selector "app.kubernetes.io/instance=$RELEASE_NAME" \
    --output custom-columns='DEPLOYMENT:.metadata.name,IMAGE:.spec.template.spec.containers[0].image,READY:.status.readyReplicas'
