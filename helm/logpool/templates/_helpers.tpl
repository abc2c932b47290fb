{{/* Names, labels and shared pieces of the logpool chart. */}}

{{- define "logpool.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "logpool.fullname" -}}
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
{{- end -}}

{{/* The name of one component's objects: {fullname}-{component}. */}}
{{- define "logpool.componentName" -}}
{{- printf "%s-%s" (include "logpool.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "logpool.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "logpool.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "put-datas"). */}}
{{- define "logpool.selectorLabels" -}}
app.kubernetes.io/name: {{ include "logpool.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "logpool.componentLabels" -}}
{{ include "logpool.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "logpool.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "logpool.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "logpool.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret the chart creates for engine credentials given as values. */}}
{{- define "logpool.engineSecretName" -}}
{{- printf "%s-engines" (include "logpool.fullname" .) -}}
{{- end -}}

{{- define "logpool.operatorKeySecretName" -}}
{{- default (printf "%s-operator-key" (include "logpool.fullname" .)) .Values.operatorKey.existingSecret -}}
{{- end -}}

{{- define "logpool.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "logpool.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- define "logpool.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{/*
One TOML value: strings, numbers, booleans and lists of them. JSON's forms of these
are valid TOML (numbers are printed without an exponent, as integers when whole).
*/}}
{{- define "logpool.tomlValue" -}}
{{- if kindIs "float64" . -}}
{{- if eq (float64 (int64 .)) . }}{{ int64 . }}{{ else }}{{ . }}{{ end -}}
{{- else if kindIs "slice" . -}}
[{{- range $i, $item := . }}{{ if $i }}, {{ end }}{{ include "logpool.tomlValue" $item }}{{ end -}}]
{{- else -}}
{{- toJson . -}}
{{- end -}}
{{- end -}}

{{/* One TOML table: [name] and its keys (sorted). Call with (dict "name" "limits" "table" $map). */}}
{{- define "logpool.tomlTable" -}}
[{{ .name }}]
{{- range $key, $value := .table }}
{{ $key }} = {{ include "logpool.tomlValue" $value }}
{{- end }}
{{- end -}}
