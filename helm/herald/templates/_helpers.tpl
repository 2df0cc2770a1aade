{{/*
Names and labels.
*/}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.fullname" -}}
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

{{- define "herald.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "herald.labels" -}}
helm.sh/chart: {{ include "herald.chart" . }}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: herald
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "herald.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The Secret holding the apps' secrets: `existingSecret`, or the chart's own.
*/}}
{{- define "herald.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- printf "%s-apps" (include "herald.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Key of an app's secret in that Secret. Call with (dict "app" $app).
*/}}
{{- define "herald.appSecretKey" -}}
{{- $app := .app }}
{{- default (printf "%s-secret" (toString $app.id)) $app.secretKey }}
{{- end }}

{{/*
Where Herald's config file is mounted.
*/}}
{{- define "herald.configDir" -}}/etc/herald{{- end }}
{{- define "herald.configPath" -}}{{ include "herald.configDir" . }}/herald.toml{{- end }}

{{/*
Where the tls.secretName Secret is mounted (tls.enabled): a directory of its own, outside the
config directory, so the kubelet can update it in place when the Secret changes.
*/}}
{{- define "herald.tlsDir" -}}/etc/herald-tls{{- end }}

{{/*
Shutdown timing. Herald on SIGTERM: fails /ready, waits shutdown.ready_grace_secs, closes
sockets over shutdown.drain_secs, then waits up to 5 s for them to finish. Kubernetes runs the
preStop sleep before SIGTERM, and the grace period counts from the start of preStop.
*/}}
{{- define "herald.socketCloseWaitSeconds" -}}5{{- end }}

{{- define "herald.minTerminationGraceSeconds" -}}
{{- $shutdown := .Values.config.shutdown | default dict }}
{{- $preStop := int64 (.Values.lifecycle.preStopSleepSeconds | default 0) }}
{{- $ready := int64 (ternary 0 $shutdown.ready_grace_secs (kindIs "invalid" $shutdown.ready_grace_secs)) }}
{{- $drain := int64 (ternary 10 $shutdown.drain_secs (kindIs "invalid" $shutdown.drain_secs)) }}
{{- add $preStop $ready $drain (include "herald.socketCloseWaitSeconds" . | int64) }}
{{- end }}

{{- define "herald.terminationGracePeriodSeconds" -}}
{{- $min := include "herald.minTerminationGraceSeconds" . | int64 }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $min (int64 .Values.terminationGraceMarginSeconds) }}
{{- else }}
{{- $set := int64 .Values.terminationGracePeriodSeconds }}
{{- if le $set $min }}
{{- fail (printf "terminationGracePeriodSeconds=%d must exceed the drain window of %d s (lifecycle.preStopSleepSeconds + config.shutdown.ready_grace_secs + config.shutdown.drain_secs + %s s for sockets to close); leave it null to derive it" $set $min (include "herald.socketCloseWaitSeconds" .)) }}
{{- end }}
{{- $set }}
{{- end }}
{{- end }}

{{/*
Whether a shared bus between nodes is configured.
*/}}
{{- define "herald.sharedBus" -}}
{{- if .Values.redis.enabled }}true{{ end }}
{{- end }}

{{/*
Herald's adapter driver: "local" without Redis, else "redis" or "redis_cluster".
*/}}
{{- define "herald.adapterDriver" -}}
{{- if not .Values.redis.enabled }}local{{ else if .Values.redis.cluster }}redis_cluster{{ else }}redis{{ end }}
{{- end }}

{{/*
Where the Redis URL comes from (HERALD_ADAPTER__REDIS_URL): `redis.existingSecret` under
`redis.existingSecretKey`, or the chart's own Secret under "redis-url" holding `redis.url`.
"herald.redisUrlInChartSecret" is non-empty in the second case.
*/}}
{{- define "herald.redisUrlInChartSecret" -}}
{{- if and .Values.redis.enabled (not .Values.redis.existingSecret) }}true{{ end }}
{{- end }}

{{- define "herald.redisSecretName" -}}
{{- default (include "herald.secretName" .) .Values.redis.existingSecret }}
{{- end }}

{{- define "herald.redisSecretKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}redis-url{{ end }}
{{- end }}

{{/*
Render-time checks; included by every template so `helm template` and `helm install` fail
early with a clear message, whichever file renders first.
*/}}
{{- define "herald.validate" -}}
{{- $redis := .Values.redis }}
{{- if $redis.enabled }}
{{- /* The URL comes from exactly one place. With the top-level existingSecret the chart makes
       no Secret at all, so a URL given in values has nowhere to go but the ConfigMap (which
       must never hold a password): refused, the URL then belongs in redis.existingSecret. */}}
{{- if and $redis.url $redis.existingSecret }}
{{- fail (printf "redis.url and redis.existingSecret %q are both set: give the Redis URL in one place (redis.existingSecret when it carries a password) and leave the other empty" $redis.existingSecret) }}
{{- end }}
{{- if not (or $redis.url $redis.existingSecret) }}
{{- fail "redis.enabled=true needs the Redis URL: set redis.url (e.g. redis://redis-master.redis.svc:6379/0) or redis.existingSecret, the name of a Secret holding it under redis.existingSecretKey" }}
{{- end }}
{{- if and $redis.url .Values.existingSecret }}
{{- fail (printf "redis.url is set but existingSecret %q is used, so the chart creates no Secret to hold the URL: put the URL in a Secret (it may be %q itself) and set redis.existingSecret to its name (and redis.existingSecretKey to its key, default \"redis-url\"), leaving redis.url empty" .Values.existingSecret .Values.existingSecret) }}
{{- end }}
{{- if $redis.url }}
{{- range $seed := splitList "," (toString $redis.url) }}
{{- $seed := trim $seed }}
{{- if not (or (hasPrefix "redis://" $seed) (hasPrefix "rediss://" $seed)) }}
{{- fail "redis.url must be redis://[:password@]host:port/db or rediss://… (for redis.cluster=true, comma-separated seeds of that form)" }}
{{- end }}
{{- end }}
{{- if and (not $redis.cluster) (contains "," (toString $redis.url)) }}
{{- fail "redis.url lists several URLs: that is only for a Redis Cluster (redis.cluster=true); give one URL for a single Redis server" }}
{{- end }}
{{- end }}
{{- /* The schema bounds each timing; their ratio is checked here, as Herald does. */}}
{{- if gt (mul (int64 $redis.heartbeatMs) 3) (int64 $redis.leaseMs) }}
{{- fail (printf "redis.heartbeatMs=%d must be at most a third of redis.leaseMs=%d (a lease survives two lost renewals): lower heartbeatMs or raise leaseMs" (int64 $redis.heartbeatMs) (int64 $redis.leaseMs)) }}
{{- end }}
{{- end }}
{{- if not (include "herald.sharedBus" .) }}
{{- if and (not .Values.autoscaling.enabled) (gt (int64 .Values.replicaCount) 1) }}
{{- fail (printf "replicaCount=%d needs a shared bus between Herald nodes, which is not configured (redis.enabled=false): with the local adapter each pod only delivers events to its own sockets. Use replicaCount=1, or set redis.enabled=true (with redis.url or redis.existingSecret); see the chart README, \"Scaling out\"" (int64 .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int64 .Values.autoscaling.maxReplicas) 1) }}
{{- fail (printf "autoscaling.maxReplicas=%d needs a shared bus between Herald nodes, which is not configured (redis.enabled=false): with the local adapter each pod only delivers events to its own sockets. Use autoscaling.maxReplicas=1, or set redis.enabled=true (with redis.url or redis.existingSecret); see the chart README, \"Scaling out\"" (int64 .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int64 .Values.autoscaling.minReplicas) (int64 .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas=%d is above autoscaling.maxReplicas=%d" (int64 .Values.autoscaling.minReplicas) (int64 .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- $store := .Values.config.app_store | default dict }}
{{- $postgres := eq (toString ($store.driver | default "static")) "postgres" }}
{{- if and (not .Values.apps) (not $postgres) }}
{{- fail "apps: at least one app is required (without one Herald would serve its public development app)" }}
{{- end }}
{{- if and .Values.database.adminTokenKey (not .Values.database.existingSecret) }}
{{- fail "database.adminTokenKey needs database.existingSecret, the Secret holding the token" }}
{{- end }}
{{- if $postgres }}
{{- if not (or $store.database_url .Values.database.existingSecret) }}
{{- fail "config.app_store.driver=postgres needs the database URL: set database.existingSecret (a Secret holding it under database.existingSecretKey) or config.app_store.database_url (without a password)" }}
{{- end }}
{{- if regexMatch "://[^/@]*:[^/@]*@" (toString $store.database_url) }}
{{- fail "config.app_store.database_url carries a password, which would land in the ConfigMap: put the URL in a Secret and set database.existingSecret instead" }}
{{- end }}
{{- end }}
{{- $ids := dict }}
{{- $secretKeys := dict }}
{{- range $i, $app := .Values.apps }}
{{- $id := toString $app.id }}
{{- if hasKey $ids $id }}
{{- fail (printf "apps[%d].id: duplicate app id %q" $i $id) }}
{{- end }}
{{- $_ := set $ids $id true }}
{{- $key := include "herald.appSecretKey" (dict "app" $app) }}
{{- if not (regexMatch "^[-._a-zA-Z0-9]+$" $key) }}
{{- fail (printf "apps[%d]: %q is not a valid Secret key (letters, digits, '-', '_', '.'); set apps[%d].secretKey" $i $key $i) }}
{{- end }}
{{- if hasKey $secretKeys $key }}
{{- fail (printf "apps[%d]: secret key %q is also used by another app; set apps[%d].secretKey" $i $key $i) }}
{{- end }}
{{- $_ := set $secretKeys $key true }}
{{- if and (include "herald.redisUrlInChartSecret" $) (eq $key (include "herald.redisSecretKey" $)) }}
{{- fail (printf "apps[%d]: secret key %q holds the Redis URL in the chart's Secret; set apps[%d].secretKey to another key" $i $key $i) }}
{{- end }}
{{- if and $.Values.existingSecret $app.secret }}
{{- fail (printf "apps[%d].secret is set but existingSecret %q is used: put the secret in that Secret under %q and leave apps[%d].secret empty" $i $.Values.existingSecret $key $i) }}
{{- end }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (eq (kindIs "invalid" $pdb.minAvailable) (kindIs "invalid" $pdb.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set exactly one of minAvailable and maxUnavailable (the other null)" }}
{{- end }}
{{- $tls := .Values.tls }}
{{- if and $tls.enabled (not $tls.secretName) }}
{{- fail "tls.enabled=true needs tls.secretName: the name of a kubernetes.io/tls Secret (keys tls.crt and tls.key) in the release namespace, e.g. the spec.secretName of a cert-manager Certificate" }}
{{- end }}
{{- /* [server.tls] is written from the tls values (with the mounted paths): a second source
       would clash with it, or name files that are not in the pod. */}}
{{- if not (kindIs "invalid" (.Values.config.server | default dict).tls) }}
{{- fail "config.server.tls is not used by this chart: set TLS on Herald's port with the top-level tls values (tls.enabled, tls.secretName, tls.reloadIntervalSecs, tls.minVersion), which mount the Secret and write [server.tls], and leave config.server.tls unset" }}
{{- end }}
{{- $_ := include "herald.terminationGracePeriodSeconds" . }}
{{- end }}

{{/*
One TOML value from a Helm value. Helm reads numbers as floats; Herald's numeric keys are all
integers, so numbers are written as integers (the schema allows only integers there).
*/}}
{{- define "herald.tomlValue" -}}
{{- $kind := kindOf . }}
{{- if eq $kind "string" }}
{{- toJson . }}
{{- else if eq $kind "bool" }}
{{- ternary "true" "false" . }}
{{- else if or (eq $kind "float64") (eq $kind "float32") (eq $kind "int") (eq $kind "int64") (eq $kind "int32") }}
{{- if ne (float64 .) (float64 (int64 .)) }}
{{- fail (printf "%v: Herald's configuration takes whole numbers here" .) }}
{{- end }}
{{- int64 . }}
{{- else if eq $kind "slice" }}
{{- $items := list }}
{{- range . }}
{{- $items = append $items (include "herald.tomlValue" .) }}
{{- end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else if eq $kind "map" }}
{{- $pairs := list }}
{{- range $k, $v := . }}
{{- if not (kindIs "invalid" $v) }}
{{- $pairs = append $pairs (printf "%s = %s" (toJson $k) (include "herald.tomlValue" $v)) }}
{{- end }}
{{- end }}
{{- printf "{ %s }" (join ", " $pairs) | replace "{  }" "{}" }}
{{- else }}
{{- fail (printf "cannot write %v (%s) into herald.toml" . $kind) }}
{{- end }}
{{- end }}

{{/*
`key = value` lines for a map (nulls skipped; maps become inline tables). Call with the map.
*/}}
{{- define "herald.tomlKeys" -}}
{{- range $key, $value := . }}
{{- if not (kindIs "invalid" $value) }}
{{ $key }} = {{ include "herald.tomlValue" $value }}
{{- end }}
{{- end }}
{{- end }}

{{/*
herald.toml without any secret: app secrets come from the environment (HERALD_APPS__<N>__SECRET),
and so does the Redis URL (HERALD_ADAPTER__REDIS_URL), which may carry a password.
*/}}
{{- define "herald.toml" -}}
# Rendered by the Herald Helm chart ({{ include "herald.chart" . }}) from its values.
# App secrets are not in this file: each comes from HERALD_APPS__<N>__SECRET (a Secret).
{{- if .Values.redis.enabled }}
# Nor is the Redis URL: it comes from HERALD_ADAPTER__REDIS_URL (a Secret).
{{- end }}
{{- range $section, $keys := .Values.config }}
{{- if $keys }}

[{{ $section }}]
{{- include "herald.tomlKeys" $keys }}
{{- end }}
{{- end }}
{{- with .Values.tls }}
{{- if .enabled }}

# From the tls values: Secret {{ .secretName }}, mounted at {{ include "herald.tlsDir" $ }}.
[server.tls]
cert_file = {{ printf "%s/tls.crt" (include "herald.tlsDir" $) | toJson }}
key_file = {{ printf "%s/tls.key" (include "herald.tlsDir" $) | toJson }}
reload_interval_secs = {{ include "herald.tomlValue" .reloadIntervalSecs }}
min_version = {{ include "herald.tomlValue" (toString .minVersion) }}
{{- end }}
{{- end }}

[adapter]
driver = {{ include "herald.adapterDriver" . | quote }}
{{- with .Values.redis }}
{{- if .enabled }}
key_prefix = {{ include "herald.tomlValue" (toString .keyPrefix) }}
lease_ms = {{ include "herald.tomlValue" .leaseMs }}
heartbeat_ms = {{ include "herald.tomlValue" .heartbeatMs }}
command_timeout_ms = {{ include "herald.tomlValue" .commandTimeoutMs }}
bus_queue = {{ include "herald.tomlValue" .busQueue }}
{{- end }}
{{- end }}
{{- range $i, $app := .Values.apps }}

# apps[{{ $i }}]: secret from HERALD_APPS__{{ $i }}__SECRET
[[apps]]
{{- include "herald.tomlKeys" (omit $app "secret" "secretKey" "limits" "webhooks") }}
{{- if $app.limits }}

[apps.limits]
{{- include "herald.tomlKeys" $app.limits }}
{{- end }}
{{- range $app.webhooks }}

[[apps.webhooks]]
{{- include "herald.tomlKeys" . }}
{{- end }}
{{- end }}
{{ end }}
