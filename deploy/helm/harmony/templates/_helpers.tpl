{{/* Names, labels and the pieces every component shares. */}}

{{- define "harmony.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name: "<release>-harmony", or the release name when it already says harmony. */}}
{{- define "harmony.fullname" -}}
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

{{/* The components: one Deployment each, in this order. */}}
{{- define "harmony.components" -}}
api gateway workers relay
{{- end }}

{{/* A component's resource name. Call with (dict "root" $ "component" "api"). */}}
{{- define "harmony.componentName" -}}
{{- printf "%s-%s" (include "harmony.fullname" .root | trunc 55 | trimSuffix "-") .component }}
{{- end }}

{{- define "harmony.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "harmony.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component. Call with (dict "root" $ "component" "api"). */}}
{{- define "harmony.selectorLabels" -}}
app.kubernetes.io/name: {{ include "harmony.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "harmony.componentLabels" -}}
{{ include "harmony.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "harmony.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "harmony.secretName" -}}
{{- default (include "harmony.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "harmony.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "harmony.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Settings the chart sets itself; `config` may not name them (the ConfigMap would hold a variable
twice, or a pod would run with roles or addresses the chart does not expect).
*/}}
{{- define "harmony.reservedSettings" -}}
server.listen server.data_dir server.roles server.metrics_listen auth.jwt_secret cluster.postgres_url cluster.history_url cluster.brokers cluster.redis_url cluster.partitions cluster.replication_factor cluster.min_insync_replicas
{{- end }}

{{/*
Environment variables from a settings map: {section: {key: value}} -> HARMONY_SECTION__KEY: "value",
one per line, sorted. Call with (dict "settings" $map "where" "config").
*/}}
{{- define "harmony.settingsEnv" -}}
{{- $reserved := splitList " " (include "harmony.reservedSettings" .) }}
{{- range $section, $keys := .settings }}
{{- if not (kindIs "map" $keys) }}
{{- fail (printf "%s.%s must be a map of settings (section: {key: value}); see config/harmony.toml" $.where $section) }}
{{- end }}
{{- range $key, $value := $keys }}
{{- if has (printf "%s.%s" $section $key) $reserved }}
{{- fail (printf "%s.%s.%s is set by the chart itself; see values.yaml" $.where $section $key) }}
{{- end }}
{{ printf "HARMONY_%s__%s" (upper $section) (upper $key) }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* A component's effective settings: the chart-wide config under its own. Call with (dict "root" $ "component" "api"). */}}
{{- define "harmony.effectiveConfig" -}}
{{- $component := index .root.Values .component }}
{{- toYaml (mustMergeOverwrite (deepCopy (default dict .root.Values.config)) (deepCopy (default dict $component.config))) }}
{{- end }}
