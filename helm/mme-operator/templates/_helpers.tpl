{{/* Chart name, overridable. */}}
{{- define "mme-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name (63 characters at most: some Kubernetes name fields are limited to
that). When the release name already contains the chart name it is not repeated.
*/}}
{{- define "mme-operator.fullname" -}}
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

{{/* Chart name and version, as used by the helm.sh/chart label. */}}
{{- define "mme-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "mme-operator.labels" -}}
helm.sh/chart: {{ include "mme-operator.chart" . }}
{{ include "mme-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: mme-operator
{{- end }}

{{/* Selector labels: must never change between upgrades (Deployment selectors are immutable). */}}
{{- define "mme-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mme-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "mme-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mme-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The container image, tag defaulting to the chart's appVersion. */}}
{{- define "mme-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Rules for the ModelEndpoint resources and Events: identical whether they end up in a
ClusterRole (all namespaces) or in a Role (one namespace).
*/}}
{{- define "mme-operator.resourceRules" -}}
# kopf lists and watches ModelEndpoints and patches them (finalizer, its annotations) and
# their /status; it posts Events through the core API. Nothing else: no update, no delete.
- apiGroups: ["mme-operator.io"]
  resources: ["modelendpoints"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["mme-operator.io"]
  resources: ["modelendpoints/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# The <name>-models ConfigMap of each ModelEndpoint (TargetModels for clients).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch"]
{{- end }}
