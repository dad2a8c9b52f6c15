#!/usr/bin/env bash
# Deploys Taskstream to Minikube: image, the event log (Redpanda with one broker, or one NATS
# server with JetStream), PostgreSQL, optionally Dapr, then the chart; in that order, waiting for
# each. Idempotent: run it again to roll out changes.
#
#   infra/minikube/deploy.sh              # start Minikube if needed and deploy everything
#   infra/minikube/deploy.sh --log nats   # the event log on NATS JetStream (infra/minikube/nats.yaml,
#                                         # nats:2.10-alpine -js) instead of Redpanda (--log kafka,
#                                         # the default); switching leaves the other one installed
#   infra/minikube/deploy.sh --with-dapr  # also install Dapr and enable its sidecars (and, on
#                                         # Kafka, the pubsub.kafka component)
#   infra/minikube/deploy.sh --no-build   # reuse the image already in Minikube (TAG=...)
#   infra/minikube/deploy.sh --delete     # uninstall everything this script installed (both logs)
#
# Needs: minikube, kubectl, helm (3.13+ or 4). The image is built inside Minikube
# (`minikube image build`), so no local Docker engine is required.
# Environment: MINIKUBE_PROFILE (minikube), MINIKUBE_CPUS (4), MINIKUBE_MEMORY (8g),
# TAG (image tag; default dev-<git sha>[-<time> when the tree is dirty]), HOST (taskstream.local).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROFILE="${MINIKUBE_PROFILE:-minikube}"
NS=taskstream
DB_NS=taskstream-db
RP_NS=redpanda
NATS_NS=nats
HOST="${HOST:-taskstream.local}"
LOG=kafka
WITH_DAPR=0
BUILD=1
DELETE=0

say() { printf '\n==> %s\n' "$*"; }
die() { printf '!!! %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo pipefail$/p' "$0" | sed '$d'; }

while (($#)); do
    case "$1" in
        --log) [[ $# -ge 2 ]] || die "--log needs kafka or nats"; LOG="$2"; shift ;;
        --log=*) LOG="${1#--log=}" ;;
        --with-dapr) WITH_DAPR=1 ;;
        --no-build) BUILD=0 ;;
        --delete) DELETE=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
case "$LOG" in
    kafka | nats) ;;
    *) die "--log must be kafka or nats, not '$LOG'" ;;
esac

for tool in minikube kubectl helm; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
mk() { minikube -p "$PROFILE" "$@"; }
kc() { kubectl --context "$PROFILE" "$@"; }
hm() { helm --kube-context "$PROFILE" "$@"; }

# Helm 4 renamed --atomic and made --wait take a strategy.
HELM_MAJOR="$(helm version --template '{{.Version}}' | sed -E 's/^v([0-9]+).*/\1/')"
if [[ "$HELM_MAJOR" -ge 4 ]]; then
    HELM_WAIT=(--wait=watcher --rollback-on-failure)
else
    HELM_WAIT=(--wait --atomic)
fi

if [[ "$DELETE" == 1 ]]; then
    say "uninstalling Taskstream, Dapr, Redpanda, NATS and PostgreSQL from profile $PROFILE"
    hm uninstall taskstream -n "$NS" --ignore-not-found --wait || true
    hm uninstall dapr -n dapr-system --ignore-not-found --wait || true
    hm uninstall redpanda -n "$RP_NS" --ignore-not-found --wait || true
    # The namespace takes the NATS StatefulSet and its volume with it.
    kc delete namespace "$NS" "$DB_NS" "$RP_NS" "$NATS_NS" dapr-system --ignore-not-found --wait=true
    say "done (Minikube itself keeps running: minikube -p $PROFILE delete removes it)"
    exit 0
fi

say "Minikube (profile $PROFILE)"
if ! mk status >/dev/null 2>&1; then
    # calico: a CNI that enforces the chart's NetworkPolicies.
    mk start --cpus="${MINIKUBE_CPUS:-4}" --memory="${MINIKUBE_MEMORY:-8g}" --cni=calico
fi
mk addons enable ingress >/dev/null
mk addons enable metrics-server >/dev/null
kc -n ingress-nginx rollout status deploy/ingress-nginx-controller --timeout=300s

if [[ -z "${TAG:-}" ]]; then
    TAG="dev-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo local)"
    if [[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]]; then
        TAG="$TAG-$(date +%Y%m%d%H%M%S)"
    fi
fi
if [[ "$BUILD" == 1 ]]; then
    say "building image taskstream:$TAG inside Minikube (the first build takes a while)"
    (cd "$ROOT" && mk image build -t "taskstream:$TAG" -f infra/docker/Dockerfile .)
fi

if [[ "$LOG" == kafka ]]; then
    say "Redpanda (one broker) in namespace $RP_NS"
    helm repo add redpanda https://charts.redpanda.com --force-update >/dev/null
    hm upgrade --install redpanda redpanda/redpanda -n "$RP_NS" --create-namespace \
        -f "$ROOT/infra/helm/redpanda/values-minikube.yaml" "${HELM_WAIT[@]}" --timeout 15m
    kc -n "$RP_NS" rollout status statefulset/redpanda --timeout=600s
    LOG_ARGS=(--set kafka.brokers=redpanda.redpanda.svc.cluster.local:9093)
else
    say "NATS (one server, JetStream) in namespace $NATS_NS"
    kc create namespace "$NATS_NS" --dry-run=client -o yaml | kc apply -f -
    kc apply -f "$ROOT/infra/minikube/nats.yaml"
    kc -n "$NATS_NS" rollout status statefulset/nats --timeout=300s
    # kafka.brokers must be empty: the chart, like the binaries, refuses both logs at once.
    LOG_ARGS=(--set-string kafka.brokers= --set nats.url=nats://nats.nats.svc.cluster.local:4222)
fi

say "PostgreSQL in namespace $DB_NS"
kc create namespace "$DB_NS" --dry-run=client -o yaml | kc apply -f -
if ! kc -n "$DB_NS" get secret postgres-auth >/dev/null 2>&1; then
    kc -n "$DB_NS" create secret generic postgres-auth \
        --from-literal=password="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
fi
kc apply -f "$ROOT/infra/minikube/postgres.yaml"
kc -n "$DB_NS" rollout status statefulset/postgres --timeout=300s

if [[ "$WITH_DAPR" == 1 ]]; then
    say "Dapr control plane in namespace dapr-system"
    helm repo add dapr https://dapr.github.io/helm-charts/ --force-update >/dev/null
    hm upgrade --install dapr dapr/dapr -n dapr-system --create-namespace "${HELM_WAIT[@]}" --timeout 10m
fi

say "secrets for Taskstream (generated once, kept across runs)"
kc create namespace "$NS" --dry-run=client -o yaml | kc apply -f -
PG_PASSWORD="$(kc -n "$DB_NS" get secret postgres-auth -o jsonpath='{.data.password}' | base64 -d)"
JWT_SECRET="$(kc -n "$NS" get secret taskstream-secrets -o jsonpath='{.data.JWT_SECRET}' 2>/dev/null | base64 -d || true)"
if [[ -z "$JWT_SECRET" ]]; then
    JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 48)"
fi
kc -n "$NS" create secret generic taskstream-secrets \
    --from-literal=DATABASE_URL="postgres://taskstream:${PG_PASSWORD}@postgres.${DB_NS}.svc.cluster.local:5432/taskstream" \
    --from-literal=JWT_SECRET="$JWT_SECRET" \
    --dry-run=client -o yaml | kc apply -f -

say "Taskstream chart (image taskstream:$TAG, event log: $LOG)"
CHART_ARGS=(
    --set image.repository=taskstream
    --set "image.tag=$TAG"
    --set image.pullPolicy=IfNotPresent
    "${LOG_ARGS[@]}"
    --set ingress.enabled=true
    --set ingress.className=nginx
    --set "ingress.hosts[0].host=$HOST"
    --set "ingress.hosts[0].paths[0].path=/"
    --set "ingress.hosts[0].paths[0].pathType=Prefix"
    --set-string 'ingress.annotations.nginx\.ingress\.kubernetes\.io/proxy-read-timeout=3600'
    --set config.logFormat=text
)
if [[ "$WITH_DAPR" == 1 ]]; then
    CHART_ARGS+=(--set dapr.enabled=true)
    # The chart's Dapr component is pubsub.kafka; on NATS there is none (docs/DEPLOYMENT.md).
    if [[ "$LOG" == kafka ]]; then
        CHART_ARGS+=(--set dapr.components.enabled=true)
    fi
fi
hm upgrade --install taskstream "$ROOT/infra/helm/taskstream" -n "$NS" \
    "${CHART_ARGS[@]}" "${HELM_WAIT[@]}" --timeout 10m
for deploy in $(kc -n "$NS" get deploy -l app.kubernetes.io/instance=taskstream -o name); do
    kc -n "$NS" rollout status "$deploy" --timeout=300s
done

# Each subscriber is one Deployment with PARTITIONS=auto: its pods share the partitions by
# leases in the database. Wait until every lease row has a live owner (the first heartbeat
# creates the rows and takes them), then show who holds what.
say "subscribers: partition leases"
for sub in recurrence reminder notification; do
    kc -n "$NS" get "deploy/taskstream-$sub" >/dev/null \
        || die "deploy/taskstream-$sub is missing: the chart runs each subscriber as one Deployment"
done
psql_db() { kc -n "$DB_NS" exec statefulset/postgres -- psql -U taskstream -d taskstream "$@"; }
LIVE="expires_at_ms > extract(epoch FROM clock_timestamp()) * 1000"
# recurrence, reminder, notification and webhook: four consumers, each with its topic's partitions.
leases_held() {
    [[ "$(psql_db -tAc "SELECT count(DISTINCT consumer) = 4 AND bool_and(owner IS NOT NULL AND $LIVE) FROM consumer_leases")" == t ]]
}
for _ in $(seq 30); do
    leases_held && break
    sleep 2
done
psql_db -c "SELECT consumer, topic, owner, count(*) AS partitions, bool_and($LIVE) AS live
    FROM consumer_leases GROUP BY consumer, topic, owner ORDER BY consumer, owner"
leases_held || die "a partition has no live lease after 60 s: see the subscribers' logs ('lease heartbeat failed')"

say "helm test"
hm test taskstream -n "$NS" --logs

IP="$(mk ip)"
TOKEN="$(kc -n "$NS" exec deploy/taskstream-gateway -- /usr/local/bin/taskstream token --sub developer 2>/dev/null || true)"
cat <<MSG

Taskstream is deployed.
  1. Point $HOST at Minikube once:   echo "$IP $HOST" | sudo tee -a /etc/hosts
     (with the docker driver on macOS/Windows run \`minikube -p $PROFILE tunnel\` and use 127.0.0.1)
  2. Open http://$HOST/graphiql and set the header
       Authorization: Bearer ${TOKEN:-<kubectl -n $NS exec deploy/taskstream-gateway -- /usr/local/bin/taskstream token --sub developer>}
  3. Follow infra/minikube/CHECKLIST.md.
MSG
