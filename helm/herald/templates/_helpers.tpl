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
Render-time checks; included by every template so `helm template` and `helm install` fail
early with a clear message, whichever file renders first.
*/}}
{{- define "herald.validate" -}}
{{- if .Values.redis.enabled }}
{{- /* Scale-out work: remove this fail once Herald ships its Redis adapter, and render the
       adapter keys in configmap.yaml (and the URL env in deployment.yaml). */}}
{{- fail "redis.enabled: Redis adapter not yet supported by this Herald version (adapter.driver \"local\" is the only driver); set redis.enabled=false and replicaCount=1" }}
{{- end }}
{{- if not (include "herald.sharedBus" .) }}
{{- if and (not .Values.autoscaling.enabled) (gt (int64 .Values.replicaCount) 1) }}
{{- fail (printf "replicaCount=%d needs a shared bus between Herald nodes, which is not configured (redis.enabled=false): with the local adapter each pod only delivers events to its own sockets. Use replicaCount=1; see the chart README, \"Scaling out\"" (int64 .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int64 .Values.autoscaling.maxReplicas) 1) }}
{{- fail (printf "autoscaling.maxReplicas=%d needs a shared bus between Herald nodes, which is not configured (redis.enabled=false): with the local adapter each pod only delivers events to its own sockets. Use autoscaling.maxReplicas=1; see the chart README, \"Scaling out\"" (int64 .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int64 .Values.autoscaling.minReplicas) (int64 .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas=%d is above autoscaling.maxReplicas=%d" (int64 .Values.autoscaling.minReplicas) (int64 .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- if not .Values.apps }}
{{- fail "apps: at least one app is required (without one Herald would serve its public development app)" }}
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
{{- if and $.Values.existingSecret $app.secret }}
{{- fail (printf "apps[%d].secret is set but existingSecret %q is used: put the secret in that Secret under %q and leave apps[%d].secret empty" $i $.Values.existingSecret $key $i) }}
{{- end }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (eq (kindIs "invalid" $pdb.minAvailable) (kindIs "invalid" $pdb.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set exactly one of minAvailable and maxUnavailable (the other null)" }}
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
herald.toml without any secret: app secrets come from the environment (HERALD_APPS__<N>__SECRET).
*/}}
{{- define "herald.toml" -}}
# Rendered by the Herald Helm chart ({{ include "herald.chart" . }}) from its values.
# App secrets are not in this file: each comes from HERALD_APPS__<N>__SECRET (a Secret).
{{- range $section, $keys := .Values.config }}
{{- if $keys }}

[{{ $section }}]
{{- include "herald.tomlKeys" $keys }}
{{- end }}
{{- end }}

[adapter]
driver = "local"
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
