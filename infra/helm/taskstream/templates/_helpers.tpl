{{/*
Names. All helpers are namespaced "taskstream.".
*/}}
{{- define "taskstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "taskstream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "taskstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels. Call with (dict "ctx" $ "component" "gateway").
Selector labels are name + instance + component (+ shard for subscribers) and never change.
*/}}
{{- define "taskstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taskstream.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .shard }}
taskstream.io/shard: {{ . | quote }}
{{- end }}
{{- end }}

{{- define "taskstream.labels" -}}
helm.sh/chart: {{ include "taskstream.chart" .ctx }}
{{ include "taskstream.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: taskstream
{{- end }}

{{/* Labels of resources that belong to no single component. */}}
{{- define "taskstream.commonLabels" -}}
{{ include "taskstream.labels" (dict "ctx" . "component" "shared") }}
{{- end }}

{{/* Pod-template labels: labels + workload identity (never in a selector). */}}
{{- define "taskstream.podLabels" -}}
{{ include "taskstream.labels" . }}
{{- if .ctx.Values.workloadIdentity.enabled }}
azure.workload.identity/use: "true"
{{- end }}
{{- end }}

{{- define "taskstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "taskstream.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "taskstream.image" -}}
{{- $img := .Values.image }}
{{- $repo := $img.repository }}
{{- if $img.registry }}
{{- $repo = printf "%s/%s" (trimSuffix "/" $img.registry) $img.repository }}
{{- end }}
{{- if $img.digest }}
{{- printf "%s@%s" $repo $img.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{- define "taskstream.secretName" -}}
{{- if .Values.keyVault.enabled }}
{{- .Values.keyVault.secretName }}
{{- else }}
{{- required "secrets.existingSecret is required (or enable keyVault)" .Values.secrets.existingSecret }}
{{- end }}
{{- end }}

{{- define "taskstream.configMapName" -}}
{{- printf "%s-config" (include "taskstream.fullname" .) }}
{{- end }}

{{/* The checksum that rolls pods when the settings change. */}}
{{- define "taskstream.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/*
Dapr sidecar annotations. Call with (dict "ctx" $ "appId" "x" "appPort" 8080); appPort 0 = none.
*/}}
{{- define "taskstream.daprAnnotations" -}}
{{- if .ctx.Values.dapr.enabled }}
dapr.io/enabled: "true"
dapr.io/app-id: {{ .appId | quote }}
{{- if .appPort }}
dapr.io/app-port: {{ .appPort | quote }}
dapr.io/app-protocol: "http"
{{- end }}
dapr.io/log-level: {{ .ctx.Values.dapr.logLevel | quote }}
dapr.io/graceful-shutdown-seconds: {{ .ctx.Values.dapr.gracefulShutdownSeconds | quote }}
dapr.io/sidecar-seccomp-profile-type: "RuntimeDefault"
dapr.io/metrics-port: {{ .ctx.Values.dapr.metricsPort | quote }}
{{- with .ctx.Values.dapr.config }}
dapr.io/config: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment shared by every container: the ConfigMap, then secrets by key. */}}
{{- define "taskstream.envFrom" -}}
- configMapRef:
    name: {{ include "taskstream.configMapName" . }}
{{- end }}

{{- define "taskstream.secretEnv" -}}
{{- $secret := include "taskstream.secretName" . }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.secrets.keys.databaseUrl }}
{{- $log := include "taskstream.eventLog" . }}
{{- if and (eq $log "kafka") .Values.kafka.sasl.mechanism }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.secrets.keys.kafkaSaslPassword }}
{{- end }}
{{- if and (eq $log "nats") (eq .Values.nats.auth.mode "userPassword") }}
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.secrets.keys.natsPassword }}
{{- end }}
{{- if and (eq $log "nats") (eq .Values.nats.auth.mode "token") }}
- name: NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.secrets.keys.natsToken }}
{{- end }}
{{- if and .Values.observability.tracing.endpoint .Values.observability.tracing.headersSecretKey }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.observability.tracing.headersSecretKey }}
{{- end }}
{{- end }}

{{/*
The migration Job's environment: only the database URL, the schema owner's
(secrets.keys.migrationDatabaseUrl, else the application's), and the role to grant to.
*/}}
{{- define "taskstream.migrationEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "taskstream.secretName" . }}
      key: {{ .Values.secrets.keys.migrationDatabaseUrl | default .Values.secrets.keys.databaseUrl }}
{{- with .Values.migration.grantTo }}
- name: TASKSTREAM_APP_DB_ROLE
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* The gateway (and relay) also need the token key unless a JWKS URL is set. */}}
{{- define "taskstream.jwtEnv" -}}
{{- if not .Values.config.jwt.jwksUrl }}
- name: JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "taskstream.secretName" . }}
      key: {{ .Values.secrets.keys.jwtSecret }}
{{- end }}
{{- end }}

{{/* Volumes every pod gets: a writable /tmp, the Key Vault CSI volume, the log's CA and credentials. */}}
{{- define "taskstream.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.keyVault.enabled }}
- name: keyvault
  csi:
    driver: secrets-store.csi.k8s.io
    readOnly: true
    volumeAttributes:
      secretProviderClass: {{ include "taskstream.fullname" . }}-kv
{{- end }}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.caConfigMap }}
- name: kafka-ca
  configMap:
    name: {{ .Values.kafka.tls.caConfigMap }}
{{- end }}
{{- if eq (include "taskstream.eventLog" .) "nats" }}
{{- if eq .Values.nats.auth.mode "creds" }}
- name: nats-creds
  secret:
    secretName: {{ include "taskstream.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .Values.secrets.keys.natsCreds }}
        path: nats.creds
{{- end }}
{{- if and .Values.nats.tls.enabled .Values.nats.tls.caConfigMap }}
- name: nats-ca
  configMap:
    name: {{ .Values.nats.tls.caConfigMap }}
{{- end }}
{{- if and .Values.nats.tls.enabled .Values.nats.tls.clientCertSecret }}
- name: nats-client
  secret:
    secretName: {{ .Values.nats.tls.clientCertSecret }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- end }}
{{- if and .Values.observability.tracing.endpoint .Values.observability.tracing.caConfigMap }}
- name: otel-ca
  configMap:
    name: {{ .Values.observability.tracing.caConfigMap }}
{{- end }}
{{- end }}

{{- define "taskstream.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.keyVault.enabled }}
- name: keyvault
  mountPath: /mnt/secrets-store
  readOnly: true
{{- end }}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.caConfigMap }}
- name: kafka-ca
  mountPath: /etc/taskstream/kafka-ca
  readOnly: true
{{- end }}
{{- if eq (include "taskstream.eventLog" .) "nats" }}
{{- if eq .Values.nats.auth.mode "creds" }}
- name: nats-creds
  mountPath: /etc/taskstream/nats-creds
  readOnly: true
{{- end }}
{{- if and .Values.nats.tls.enabled .Values.nats.tls.caConfigMap }}
- name: nats-ca
  mountPath: /etc/taskstream/nats-ca
  readOnly: true
{{- end }}
{{- if and .Values.nats.tls.enabled .Values.nats.tls.clientCertSecret }}
- name: nats-client
  mountPath: /etc/taskstream/nats-client
  readOnly: true
{{- end }}
{{- end }}
{{- if and .Values.observability.tracing.endpoint .Values.observability.tracing.caConfigMap }}
- name: otel-ca
  mountPath: /etc/taskstream/otel-ca
  readOnly: true
{{- end }}
{{- end }}

{{/*
The OpenTelemetry Collector's port, from observability.tracing.endpoint (the scheme's default
when the URL names none), for the NetworkPolicy's egress.
*/}}
{{- define "taskstream.otlpPort" -}}
{{- $url := urlParse .Values.observability.tracing.endpoint }}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $url.host) }}
{{- if $port }}{{ $port }}{{- else if eq $url.scheme "https" }}443{{- else }}80{{- end }}
{{- end }}

{{/*
Checks that the schema cannot express. Included once, from the ConfigMap.
*/}}
{{- define "taskstream.validate" -}}
{{- with .Values.config.oidc }}
{{- if and .issuer (not .clientId) }}
{{- fail "config.oidc.issuer needs config.oidc.clientId" }}
{{- end }}
{{- if and .clientId (not .issuer) }}
{{- fail "config.oidc.clientId needs config.oidc.issuer" }}
{{- end }}
{{- if and .issuer (not $.Values.config.jwt.jwksUrl) }}
{{- fail "config.oidc needs config.jwt.jwksUrl of the same provider (the gateway verifies its tokens)" }}
{{- end }}
{{- end }}
{{- with .Values.observability.tracing }}
{{- if and .caConfigMap (not (hasPrefix "https://" .endpoint)) }}
{{- fail "observability.tracing.caConfigMap needs an https:// observability.tracing.endpoint (the CA only applies to TLS)" }}
{{- end }}
{{- end }}
{{- if and .Values.migration.grantTo (not .Values.secrets.keys.migrationDatabaseUrl) }}
{{- fail "migration.grantTo needs secrets.keys.migrationDatabaseUrl: the Job grants as the schema's owner, not with the application role's URL (docs/DEPLOYMENT.md, Database roles)" }}
{{- end }}
{{- if and (not .Values.migration.enabled) (or .Values.migration.grantTo .Values.secrets.keys.migrationDatabaseUrl) }}
{{- fail "migration.grantTo and secrets.keys.migrationDatabaseUrl need migration.enabled: without the Job the gateway migrates with its own URL" }}
{{- end }}
{{- if and .Values.keyVault.enabled (not .Values.workloadIdentity.enabled) }}
{{- fail "keyVault.enabled needs workloadIdentity.enabled (the CSI driver authenticates as the workload identity)" }}
{{- end }}
{{- if .Values.keyVault.enabled }}
{{- $_ := required "keyVault.name is required when keyVault.enabled" .Values.keyVault.name }}
{{- $_ := required "workloadIdentity.tenantId is required when keyVault.enabled" .Values.workloadIdentity.tenantId }}
{{- end }}
{{- if .Values.workloadIdentity.enabled }}
{{- $_ := required "workloadIdentity.clientId is required when workloadIdentity.enabled" .Values.workloadIdentity.clientId }}
{{- end }}
{{- if .Values.dapr.enabled }}
{{- $ports := dict (toString .Values.gateway.port) "gateway.port" }}
{{- if .Values.subscribers.metrics.enabled }}{{- $_ := set $ports (toString .Values.subscribers.metrics.port) "subscribers.metrics.port" }}{{- end }}
{{- if and .Values.relay.separate .Values.relay.metrics.enabled }}{{- $_ := set $ports (toString .Values.relay.metrics.port) "relay.metrics.port" }}{{- end }}
{{- /* daprd's HTTP, health, gRPC and internal gRPC ports, and its metrics port */}}
{{- range $port := list "3500" "3501" "50001" "50002" (toString $.Values.dapr.metricsPort) }}
{{- if hasKey $ports $port }}
{{- fail (printf "dapr: the sidecar listens on %s, which is %s too; change one (dapr.metricsPort for the sidecar's metrics)" $port (get $ports $port)) }}
{{- end }}
{{- end }}
{{- if and .Values.dapr.components.enabled .Values.kafka.tls.enabled .Values.kafka.tls.caConfigMap (not .Values.dapr.components.pubsub.caSecret) }}
{{- fail "dapr.components.pubsub.caSecret is required with kafka.tls.caConfigMap: the Dapr component reads the brokers' CA from a Secret (docs/DEPLOYMENT.md)" }}
{{- end }}
{{- end }}
{{- if and .Values.observability.serviceMonitor.enabled .Values.networkPolicy.enabled (not .Values.networkPolicy.metricsFrom) }}
{{- fail "observability.serviceMonitor needs networkPolicy.metricsFrom (the Prometheus's namespace): the default-deny NetworkPolicy would block every scrape" }}
{{- end }}
{{- if and .Values.ingress.tlsIssuer.enabled (not .Values.ingress.tls) }}
{{- fail "ingress.tlsIssuer needs ingress.tls (the Secret names and hosts to issue certificates for)" }}
{{- end }}
{{- if and .Values.ingress.enabled .Values.httpRoute.enabled }}
{{- fail "enable either ingress or httpRoute, not both" }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.username) }}
{{- fail "kafka.sasl.username is required when kafka.sasl.mechanism is set" }}
{{- end }}
{{- $log := include "taskstream.eventLog" . }}
{{- if and (include "taskstream.kafkaBrokers" .) .Values.nats.url }}
{{- fail "kafka.brokers and nats.url are both set: choose one event log (set kafka.brokers to \"\" to use NATS); the binaries refuse KAFKA_BROKERS with NATS_URL" }}
{{- end }}
{{- if eq $log "nats" }}
{{- with .Values.nats }}
{{- if and (eq .auth.mode "userPassword") (not .auth.username) }}
{{- fail "nats.auth.username is required when nats.auth.mode is userPassword" }}
{{- end }}
{{- if and (ne .auth.mode "userPassword") .auth.username }}
{{- fail "nats.auth.username is only used with nats.auth.mode userPassword" }}
{{- end }}
{{- if and (or .tls.caConfigMap .tls.clientCertSecret) (not .tls.enabled) }}
{{- fail "nats.tls.caConfigMap and nats.tls.clientCertSecret need nats.tls.enabled" }}
{{- end }}
{{- end }}
{{- if and .Values.dapr.enabled .Values.dapr.components.enabled }}
{{- fail "dapr.components renders a pubsub.kafka Component, which needs kafka.brokers; with nats.url turn it off (Dapr apps can read the streams with pubsub.jetstream, docs/DEPLOYMENT.md)" }}
{{- end }}
{{- end }}
{{- if and (eq $log "embedded") .Values.relay.separate }}
{{- fail "relay.separate needs an event log to publish to (kafka.brokers or nats.url); in embedded mode the outbox is the log" }}
{{- end }}
{{- if and (eq $log "embedded") .Values.dapr.enabled .Values.dapr.components.enabled }}
{{- fail "dapr.components renders a pubsub.kafka Component, which needs kafka.brokers" }}
{{- end }}
{{- $partitions := int (include "taskstream.partitions" .) }}
{{- $partitionsKey := ternary "nats.partitions" "kafka.partitions" (eq $log "nats") }}
{{- range $sub := list "recurrence" "reminder" "notification" }}
{{- $s := index $.Values.subscribers $sub }}
{{- if $s.enabled }}
{{- if eq $log "embedded" }}
{{- fail (printf "subscribers.%s.enabled needs an event log, kafka.brokers or nats.url: the subscribers run only in distributed mode (in embedded mode they run inside the gateway; disable them here)" $sub) }}
{{- end }}
{{- if and $s.autoscaling.enabled $s.keda.enabled }}
{{- fail (printf "subscribers.%s: enable autoscaling (HPA) or keda, never both on one workload" $sub) }}
{{- end }}
{{- if and $s.keda.enabled (not $.Values.keda.enabled) }}
{{- fail (printf "subscribers.%s.keda.enabled needs the global keda.enabled (KEDA installed in the cluster)" $sub) }}
{{- end }}
{{- if and (eq $sub "reminder") $s.keda.enabled (lt (int $s.keda.minReplicaCount) 1) }}
{{- fail "subscribers.reminder.keda.minReplicaCount must be at least 1: the reminder pod also runs the scheduler" }}
{{- end }}
{{- if and (eq $sub "reminder") $s.autoscaling.enabled (lt (int $s.autoscaling.minReplicas) 1) }}
{{- fail "subscribers.reminder.autoscaling.minReplicas must be at least 1" }}
{{- end }}
{{- $owned := dict "PARTITIONS" (printf "the chart sets it; use subscribers.%s.shards for fixed partitions" $sub) "LEASE_TTL_MS" (printf "the chart sets it; use subscribers.%s.leaseTtlMs" $sub) "INSTANCE_ID" "every pod would get the same id; leave it unset (the default, pod name, pid and a random suffix, is unique per pod)" }}
{{- range $var, $why := $owned }}
{{- if hasKey ($s.env | default dict) $var }}
{{- fail (printf "subscribers.%s.env sets %s: %s" $sub $var $why) }}
{{- end }}
{{- end }}
{{- $seen := dict }}
{{- $workloads := include "taskstream.subscriberWorkloads" (dict "s" $s) | fromYamlArray }}
{{- $shardCount := len $workloads }}
{{- range $w := $workloads }}
{{- $parts := $w.partitions }}
{{- if eq $parts "auto" }}
{{- /* Pods beyond the partition count consume nothing (docs/DEPLOYMENT.md, Sizing partitions
against replicas). The recurrence subscriber does nothing else, so that is a mistake; the reminder
and notification pods also share their scheduler's or webhook dispatcher's work, so NOTES.txt
only warns for them. */}}
{{- $most := include "taskstream.subscriberMaxReplicas" (dict "s" $s "sub" $sub) | fromYaml }}
{{- if and (eq $sub "recurrence") (gt (int $most.max) $partitions) }}
{{- fail (printf "%s is %d, but %s is %d: with PARTITIONS=auto at most one pod per partition consumes, and the recurrence subscriber does nothing else, so pods beyond %d would only stand by; set it to at most %d (docs/DEPLOYMENT.md, Sizing partitions against replicas)" $most.key (int $most.max) $partitionsKey $partitions $partitions $partitions) }}
{{- end }}
{{- else if eq $parts "all" }}
{{- if gt $shardCount 1 }}
{{- fail (printf "subscribers.%s.shards.%s owns all partitions, so it must be the only shard" $sub $w.shard) }}
{{- end }}
{{- else }}
{{- range $p := splitList "," $parts }}
{{- $p = trim $p }}
{{- if ge (int $p) $partitions }}
{{- fail (printf "subscribers.%s.shards.%s names partition %s, but %s is %d" $sub $w.shard $p $partitionsKey $partitions) }}
{{- end }}
{{- if hasKey $seen $p }}
{{- fail (printf "subscribers.%s: partition %s is in shards %s and %s; shards must be disjoint" $sub $p (get $seen $p) $w.shard) }}
{{- end }}
{{- $_ := set $seen $p $w.shard }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (gt (len $seen) 0) (ne (len $seen) $partitions) }}
{{- fail (printf "subscribers.%s: the shards cover %d of %d partitions (%s); every partition needs an owner" $sub (len $seen) $partitions $partitionsKey) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Deployments of a subscriber as a YAML list (use with fromYamlArray), each {shard,
partitions, replicaCount}: one per entry of .s.shards (fixed partition lists), or, without
shards, one with partitions "auto" and no shard (leases share the partitions out).
*/}}
{{- define "taskstream.subscriberWorkloads" -}}
{{- if .s.shards }}
{{- range $name, $shard := .s.shards }}
- shard: {{ $name | quote }}
  partitions: {{ $shard.partitions | toString | quote }}
  replicaCount: {{ hasKey $shard "replicaCount" | ternary $shard.replicaCount $.s.replicaCount | default 0 }}
{{- end }}
{{- else }}
- shard: ""
  partitions: "auto"
  replicaCount: {{ .s.replicaCount }}
{{- end }}
{{- end }}

{{/* LEASE_TTL_MS of a subscriber: .s.leaseTtlMs, else .defaults.leaseTtlMs. */}}
{{- define "taskstream.leaseTtlMs" -}}
{{- if hasKey .s "leaseTtlMs" }}{{ .s.leaseTtlMs | int64 }}{{ else }}{{ .defaults.leaseTtlMs | int64 }}{{ end }}
{{- end }}

{{/*
The most pods an auto (PARTITIONS=auto) subscriber may run, as YAML {max, key}: the KEDA or
HPA maximum when it scales, else replicaCount; key names the value that sets it.
*/}}
{{- define "taskstream.subscriberMaxReplicas" -}}
{{- if .s.keda.enabled }}
max: {{ .s.keda.maxReplicaCount | int }}
key: subscribers.{{ .sub }}.keda.maxReplicaCount
{{- else if .s.autoscaling.enabled }}
max: {{ .s.autoscaling.maxReplicas | int }}
key: subscribers.{{ .sub }}.autoscaling.maxReplicas
{{- else }}
max: {{ .s.replicaCount | int }}
key: subscribers.{{ .sub }}.replicaCount
{{- end }}
{{- end }}

{{/* kafka.brokers as the comma list the binaries take (the value may be a string or a list). */}}
{{- define "taskstream.kafkaBrokers" -}}
{{- if kindIs "slice" .Values.kafka.brokers }}
{{- join "," .Values.kafka.brokers }}
{{- else }}
{{- .Values.kafka.brokers }}
{{- end }}
{{- end }}

{{/*
The event log: "kafka" (kafka.brokers), "nats" (nats.url) or "embedded" (neither; the outbox is
the log). Both set is refused by the schema and by taskstream.validate.
*/}}
{{- define "taskstream.eventLog" -}}
{{- if include "taskstream.kafkaBrokers" . }}kafka{{- else if .Values.nats.url }}nats{{- else }}embedded{{- end }}
{{- end }}

{{/* Partitions per topic of the chosen log: nats.partitions with NATS, kafka.partitions otherwise. */}}
{{- define "taskstream.partitions" -}}
{{- if eq (include "taskstream.eventLog" .) "nats" }}{{ .Values.nats.partitions | int }}{{- else }}{{ .Values.kafka.partitions | int }}{{- end }}
{{- end }}

{{/*
The TCP ports of the servers in nats.url, as a JSON list (use with fromJsonArray): each URL's
port, 4222 (the NATS client port) when it names none.
*/}}
{{- define "taskstream.natsPorts" -}}
{{- $ports := list }}
{{- range $u := splitList "," .Values.nats.url }}
{{- $hostPort := regexReplaceAll "^[a-z]+://" (trim $u) "" }}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $hostPort) | default "4222" }}
{{- $ports = append $ports (int $port) }}
{{- end }}
{{- $ports | uniq | toJson }}
{{- end }}

{{/*
checkov skips (annotations), with the reason for each. Call with
(dict "probes" true|false "secretEnv" true|false); numbered checkov.io/skipN keys.
*/}}
{{- define "taskstream.checkovSkips" -}}
{{- $skips := list
  "CKV_K8S_11=no CPU limit by design: CFS throttling hurts latency; CPU requests are set and the HPA scales on them"
  "CKV_K8S_15=IfNotPresent is right for immutable tags (git SHA) and digests, and required for images built into Minikube"
  "CKV_K8S_43=tags are immutable git SHAs; set image.digest to pin by digest" }}
{{- if .secretEnv }}
{{- $skips = append $skips "CKV_K8S_35=the binaries read DATABASE_URL, JWT_SECRET, KAFKA_SASL_PASSWORD, NATS_PASSWORD and NATS_TOKEN from the environment only (no *_FILE variant yet)" }}
{{- end }}
{{- if .probes }}
{{- $skips = append $skips (printf "CKV_K8S_8=%s" .probes) }}
{{- $skips = append $skips (printf "CKV_K8S_9=%s" .probes) }}
{{- end }}
{{- range $i, $s := $skips }}
checkov.io/skip{{ add1 $i }}: {{ $s | quote }}
{{- end }}
{{- end }}
