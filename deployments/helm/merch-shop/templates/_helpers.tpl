{{/*
Helpers of the merch-shop chart. The six services share one set of templates
(templates/services.yaml ranges over .Values.services); what differs between
them by code (ports, whom each calls, which infrastructure each uses) is the
wiring table below, so values.yaml holds only knobs.
*/}}

{{/* The wiring of the code: ports and call graph. Change only with the code. */}}
{{- define "merch-shop.wiring" -}}
gateway:
  http: true
  port: 8080
  calls: [auth, user, coins, merch, info]
  uses: [redis]
auth:
  port: 50051
  adminPort: 8081
  calls: [user, coins]
  uses: [postgres]
user:
  port: 50052
  adminPort: 8082
  calls: []
  uses: [postgres, redis]
coins:
  port: 50053
  adminPort: 8083
  calls: []
  uses: [postgres, kafka, redis]
merch:
  port: 50054
  adminPort: 8084
  calls: [coins, user]
  uses: [postgres, ydb]
info:
  port: 50055
  adminPort: 8085
  calls: [coins, user]
  uses: [clickhouse, kafka]
{{- end }}

{{/* wiring of one service: include "merch-shop.wire" (dict "root" $ "name" "coins") | fromYaml */}}
{{- define "merch-shop.wire" -}}
{{- $all := include "merch-shop.wiring" .root | fromYaml -}}
{{- if not (hasKey $all .name) -}}
{{- fail (printf "services.%s: unknown service; the chart knows gateway, auth, user, coins, merch, info" .name) -}}
{{- end -}}
{{- $w := get $all .name -}}
{{- /* ydb counts as used only when it is switched on */ -}}
{{- $uses := list -}}
{{- range $w.uses -}}
{{- if or (ne . "ydb") $.root.Values.ydb.enabled -}}
{{- $uses = append $uses . -}}
{{- end -}}
{{- end -}}
{{- $_ := set $w "uses" $uses -}}
{{- toYaml $w -}}
{{- end }}

{{- define "merch-shop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{- define "merch-shop.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* Name of a component's resources: (dict "root" $ "component" "coins") */}}
{{- define "merch-shop.componentName" -}}
{{- printf "%s-%s" (include "merch-shop.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* Labels selecting every pod of the release (default deny, DNS). */}}
{{- define "merch-shop.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "merch-shop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels selecting one component's pods: (dict "root" $ "component" "coins") */}}
{{- define "merch-shop.selectorLabels" -}}
{{ include "merch-shop.releaseSelectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of a component's resources: (dict "root" $ "component" "coins") */}}
{{- define "merch-shop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "merch-shop.selectorLabels" . }}
app.kubernetes.io/part-of: merch-shop
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* Fully qualified DNS name of a component's Service: (dict "root" $ "component" "coins") */}}
{{- define "merch-shop.host" -}}
{{- printf "%s.%s.svc.%s" (include "merch-shop.componentName" .) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end }}

{{/*
gRPC target of a backend for the callers: dns:/// over the headless Service,
so the clients' round_robin balancing sees every ready pod.
(dict "root" $ "component" "coins")
*/}}
{{- define "merch-shop.grpcTarget" -}}
{{- $w := include "merch-shop.wire" (dict "root" .root "name" .component) | fromYaml -}}
{{- printf "dns:///%s:%v" (include "merch-shop.host" .) $w.port -}}
{{- end }}

{{/* Image of a service: (dict "root" $ "name" "coins" "svc" $mergedValues) */}}
{{- define "merch-shop.serviceImage" -}}
{{- $img := .root.Values.image -}}
{{- $tag := .svc.imageTag | default $img.tag | default .root.Chart.AppVersion | toString -}}
{{- if eq $tag "latest" -}}
{{- fail "image.tag: pin a version, not \"latest\"" -}}
{{- end -}}
{{- $ref := printf "%s/%s:%s" $img.repository .name $tag -}}
{{- if $img.registry -}}
{{- $ref = printf "%s/%s" $img.registry $ref -}}
{{- end -}}
{{- $ref -}}
{{- end }}

{{/* Image of an infrastructure part: the part's .image dict. */}}
{{- define "merch-shop.infraImage" -}}
{{- if or (not .tag) (eq (toString .tag) "latest") -}}
{{- fail (printf "%s: pin an image tag, not \"latest\"" .repository) -}}
{{- end -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end }}

{{/* One service's values: serviceDefaults deep-merged with services.<name>. (dict "root" $ "name" "coins") */}}
{{- define "merch-shop.serviceValues" -}}
{{- $own := get .root.Values.services .name | default dict -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.serviceDefaults) (deepCopy $own)) -}}
{{- end }}

{{/* ---- Addresses of the infrastructure (bundled or external) ---- */}}

{{- define "merch-shop.kafkaBrokers" -}}
{{- if .Values.kafka.enabled -}}
{{- $name := include "merch-shop.componentName" (dict "root" . "component" "kafka") -}}
{{- $brokers := list -}}
{{- range $i := until (int .Values.kafka.replicas) -}}
{{- $brokers = append $brokers (printf "%s-%d.%s-headless.%s.svc.%s:9092" $name $i $name $.Release.Namespace $.Values.clusterDomain) -}}
{{- end -}}
{{- join "," $brokers -}}
{{- else -}}
{{- if not .Values.kafka.external.brokers -}}
{{- fail "kafka.enabled is false: set kafka.external.brokers" -}}
{{- end -}}
{{- join "," .Values.kafka.external.brokers -}}
{{- end -}}
{{- end }}

{{- define "merch-shop.redisAddr" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s:6379" (include "merch-shop.host" (dict "root" . "component" "redis")) -}}
{{- else -}}
{{- required "redis.enabled is false: set redis.external.addr" .Values.redis.external.addr -}}
{{- end -}}
{{- end }}

{{- define "merch-shop.clickhouseAddr" -}}
{{- if .Values.clickhouse.enabled -}}
{{- printf "%s:9000" (include "merch-shop.host" (dict "root" . "component" "clickhouse")) -}}
{{- else -}}
{{- required "clickhouse.enabled is false: set clickhouse.external.addr" .Values.clickhouse.external.addr -}}
{{- end -}}
{{- end }}

{{- define "merch-shop.postgresHost" -}}
{{- if .Values.postgres.enabled -}}
{{- include "merch-shop.host" (dict "root" . "component" "postgres") -}}
{{- else -}}
{{- required "postgres.enabled is false: set postgres.external.host or postgres.external.urlsSecret" .Values.postgres.external.host -}}
{{- end -}}
{{- end }}

{{/* Ports of an infrastructure part, as seen by its clients. (dict "root" $ "part" "kafka") */}}
{{- define "merch-shop.infraPorts" -}}
{{- $v := .root.Values -}}
{{- $ports := list -}}
{{- if eq .part "postgres" -}}
{{- $ports = list (ternary 5432 (int $v.postgres.external.port) $v.postgres.enabled) -}}
{{- else if eq .part "redis" -}}
{{- $ports = list (ternary 6379 (int (last (splitList ":" (include "merch-shop.redisAddr" .root)))) $v.redis.enabled) -}}
{{- else if eq .part "clickhouse" -}}
{{- $ports = list (ternary 9000 (int (last (splitList ":" (include "merch-shop.clickhouseAddr" .root)))) $v.clickhouse.enabled) -}}
{{- else if eq .part "kafka" -}}
{{- if $v.kafka.enabled -}}
{{- $ports = list 9092 -}}
{{- else -}}
{{- range $v.kafka.external.brokers -}}
{{- $ports = append $ports (int (last (splitList ":" .))) -}}
{{- end -}}
{{- end -}}
{{- else if eq .part "ydb" -}}
{{- $ep := required "ydb.enabled is true: set ydb.endpoint" $v.ydb.endpoint -}}
{{- $hostport := regexReplaceAll "^[a-z]+://" $ep "" | splitList "/" | first -}}
{{- $ports = list (int (last (splitList ":" $hostport))) -}}
{{- end -}}
{{- toJson (dict "ports" (uniq $ports)) -}}
{{- end }}

{{/* ---- A service's settings ---- */}}

{{/*
Plain (non-secret) environment of a service, the data of its ConfigMap.
(dict "root" $ "name" "coins" "svc" $values "wire" $wire)
*/}}
{{- define "merch-shop.serviceConfig" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $env := dict
  "LOG_LEVEL" $v.common.logLevel
  "RPC_TIMEOUT" $v.common.rpcTimeout
  "SHUTDOWN_GRACE" $v.common.shutdownGrace
  "PPROF" (toString $v.common.pprof)
-}}
{{- if .wire.http -}}
{{- $_ := set $env "HTTP_ADDR" (printf ":%v" .wire.port) -}}
{{- else -}}
{{- $_ := set $env "GRPC_ADDR" (printf ":%v" .wire.port) -}}
{{- $_ := set $env "ADMIN_ADDR" (printf ":%v" .wire.adminPort) -}}
{{- end -}}
{{- range .wire.calls -}}
{{- $_ := set $env (printf "%s_TARGET" (upper .)) (include "merch-shop.grpcTarget" (dict "root" $root "component" .)) -}}
{{- end -}}
{{- if has "kafka" .wire.uses -}}
{{- $_ := set $env "KAFKA_BROKERS" (include "merch-shop.kafkaBrokers" $root) -}}
{{- end -}}
{{- if has "redis" .wire.uses -}}
{{- $_ := set $env "REDIS_ADDR" (include "merch-shop.redisAddr" $root) -}}
{{- /* the info view cache: read by the gateway, told of writes by coins and user; one switch for all */ -}}
{{- $_ := set $env "VIEW_CACHE" (toString $v.viewCache.enabled) -}}
{{- end -}}
{{- if has "clickhouse" .wire.uses -}}
{{- $_ := set $env "CLICKHOUSE_ADDR" (include "merch-shop.clickhouseAddr" $root) -}}
{{- $_ := set $env "CLICKHOUSE_DATABASE" $v.clickhouse.database -}}
{{- $_ := set $env "CLICKHOUSE_USER" $v.clickhouse.username -}}
{{- end -}}
{{- if eq .name "merch" -}}
{{- if $v.ydb.enabled -}}
{{- $_ := set $env "MERCH_STORE" "ydb" -}}
{{- $_ := set $env "YDB_ENDPOINT" (required "ydb.enabled is true: set ydb.endpoint" $v.ydb.endpoint) -}}
{{- $_ := set $env "YDB_DATABASE" (required "ydb.enabled is true: set ydb.database" $v.ydb.database) -}}
{{- else -}}
{{- $_ := set $env "MERCH_STORE" "postgres" -}}
{{- end -}}
{{- end -}}
{{- if eq .name "auth" -}}
{{- $_ := set $env "AUTH_SIGNING_KEY_FILE" (printf "/etc/merch-shop/auth-keys/%s" $v.authKeys.signingKey) -}}
{{- $files := list -}}
{{- range $v.authKeys.verifyKeys -}}
{{- $files = append $files (printf "/etc/merch-shop/auth-keys/%s" .) -}}
{{- end -}}
{{- if $files -}}
{{- $_ := set $env "AUTH_VERIFY_KEY_FILES" (join "," $files) -}}
{{- end -}}
{{- end -}}
{{- range $k, $val := $v.common.env -}}
{{- $_ := set $env $k $val -}}
{{- end -}}
{{- range $k, $val := .svc.env -}}
{{- $_ := set $env $k $val -}}
{{- end -}}
{{- range $k, $val := $env }}
{{ $k }}: {{ $val | toString | quote }}
{{- end -}}
{{- end }}

{{/*
Environment of a service that comes from Secrets (never values): the database
URL and passwords. (dict "root" $ "name" "coins" "wire" $wire)
*/}}
{{- define "merch-shop.serviceSecretEnv" -}}
{{- $v := .root.Values -}}
{{- if has "postgres" .wire.uses }}
{{- if and (not $v.postgres.enabled) $v.postgres.external.urlsSecret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.postgres.external.urlsSecret }}
      key: {{ .name }}
{{- else }}
# The password is URL-safe by contract; Kubernetes expands $(DATABASE_PASSWORD).
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.postgres.existingSecret }}
      key: {{ $v.postgres.passwordKey }}
- name: DATABASE_URL
  value: {{ printf "postgres://%s:$(DATABASE_PASSWORD)@%s:%v/%s?sslmode=%s" $v.postgres.username (include "merch-shop.postgresHost" .root) (ternary 5432 $v.postgres.external.port $v.postgres.enabled) (get $v.postgres.databases .name) (ternary "disable" $v.postgres.external.sslMode $v.postgres.enabled) | quote }}
{{- end }}
{{- end }}
{{- if has "clickhouse" .wire.uses }}
- name: CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.clickhouse.existingSecret }}
      key: {{ $v.clickhouse.passwordKey }}
{{- end }}
{{- if and (has "ydb" .wire.uses) $v.ydb.tokenSecret }}
- name: YDB_ACCESS_TOKEN_CREDENTIALS
  valueFrom:
    secretKeyRef:
      name: {{ $v.ydb.tokenSecret }}
      key: {{ $v.ydb.tokenKey }}
{{- end }}
{{- end }}

{{/* A standard pod securityContext for infrastructure running as uid: (dict "uid" 999) */}}
{{- define "merch-shop.infraPodSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* A container securityContext for infrastructure: (dict "readOnlyRootFilesystem" bool) */}}
{{- define "merch-shop.infraContainerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnlyRootFilesystem }}
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* volumeClaimTemplates or an emptyDir volume: (dict "root" $ "component" "kafka" "persistence" $p) */}}
{{- define "merch-shop.claimTemplates" -}}
{{- if .persistence.enabled }}
volumeClaimTemplates:
  - metadata:
      name: data
      labels:
        {{- include "merch-shop.selectorLabels" (dict "root" .root "component" .component) | nindent 8 }}
    spec:
      accessModes: [ReadWriteOnce]
      {{- with .persistence.storageClass }}
      storageClassName: {{ . | quote }}
      {{- end }}
      resources:
        requests:
          storage: {{ .persistence.size }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of a component: (dict "root" $ "component" "coins") */}}
{{- define "merch-shop.serviceAccount" -}}
{{- if .root.Values.serviceAccount.create }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "merch-shop.componentName" . }}
  labels:
    {{- include "merch-shop.labels" . | nindent 4 }}
  {{- with .root.Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ .root.Values.serviceAccount.automountServiceAccountToken }}
{{- end }}
{{- end }}

{{- define "merch-shop.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{- include "merch-shop.componentName" . -}}
{{- else -}}
default
{{- end -}}
{{- end }}

{{/* users.d file of the bundled ClickHouse. */}}
{{- define "merch-shop.clickhouseUsers" -}}
<clickhouse>
  <users>
    <!-- The built-in user: only from inside the pod (no password). -->
    <default>
      <networks replace="replace">
        <ip>::1</ip>
        <ip>127.0.0.1</ip>
      </networks>
    </default>
    <!-- The info service's user; its password comes from the Secret. -->
    <{{ .Values.clickhouse.username }}>
      <password from_env="CLICKHOUSE_PASSWORD"/>
      <networks>
        <ip>::/0</ip>
      </networks>
      <profile>default</profile>
      <quota>default</quota>
    </{{ .Values.clickhouse.username }}>
  </users>
</clickhouse>
{{- end }}

{{/*
Egress rule to an infrastructure part: the bundled pods, or an external
endpoint's port(s) (to the peers given in <part>.external.to / ydb.to, else to
any address). (dict "root" $ "part" "kafka")
*/}}
{{- define "merch-shop.infraEgress" -}}
{{- $v := .root.Values -}}
{{- $cfg := get $v .part -}}
{{- $ports := (include "merch-shop.infraPorts" . | fromJson).ports -}}
{{- $bundled := and (ne .part "ydb") $cfg.enabled -}}
{{- $peers := ternary $cfg.to (($cfg.external | default dict).to) (eq .part "ydb") -}}
{{- if $bundled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "merch-shop.selectorLabels" (dict "root" .root "component" .part) | nindent 10 }}
  ports:
{{- else if $peers }}
- to:
    {{- toYaml $peers | nindent 4 }}
  ports:
{{- else }}
# Outside the cluster, anywhere: that port only.
- ports:
{{- end }}
    {{- range $ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
