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

{{/*
The container image, tag defaulting to the chart's appVersion. No image is published, so
there is no default repository: an install without one would sit in ImagePullBackOff.
The tag may come as a number (`--set image.tag=1`).
*/}}
{{- define "mme-operator.image" -}}
{{- $repository := required (printf "image.repository is required: no mme-operator image is published. Build it from the repository's Dockerfile and push it to a registry your cluster pulls from (docker build -t REGISTRY/mme-operator:%s . && docker push REGISTRY/mme-operator:%s), then --set image.repository=REGISTRY/mme-operator (the tag defaults to %s; or --set image.digest=sha256:... of what you pushed)" .Chart.AppVersion .Chart.AppVersion .Chart.AppVersion) .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (toString .Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* A map of labels or annotations with every value a string (`--set podLabels.tier=1`). */}}
{{- define "mme-operator.stringMap" -}}
{{- $out := dict }}
{{- range $key, $value := . }}
{{- $_ := set $out $key (toString $value) }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* MME_MAX_SOURCE_BYTES in force: config.maxSourceBytes, else the operator's default (8 GiB). */}}
{{- define "mme-operator.maxSourceBytes" -}}
{{- if kindIs "invalid" .Values.config.maxSourceBytes }}8589934592{{ else }}{{ .Values.config.maxSourceBytes | int64 }}{{ end }}
{{- end }}

{{/* Bytes of an integer Kubernetes quantity (20Gi, 500M, 1073741824); -1 if not one. */}}
{{- define "mme-operator.quantityBytes" -}}
{{- $q := toString . }}
{{- if regexMatch "^[0-9]+(k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$" $q }}
{{- $digits := regexFind "^[0-9]+" $q }}
{{- $unit := trimPrefix $digits $q }}
{{- $factors := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "P" 1000000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "Pi" 1125899906842624 }}
{{- mul ($digits | int64) (get $factors $unit) }}
{{- else }}-1{{ end }}
{{- end }}

{{/* A byte count as a quantity: whole Gi or Mi where exact, else bytes. */}}
{{- define "mme-operator.bytesQuantity" -}}
{{- $bytes := . | int64 }}
{{- if eq (mod $bytes 1073741824) 0 }}{{ div $bytes 1073741824 }}Gi
{{- else if eq (mod $bytes 1048576) 0 }}{{ div $bytes 1048576 }}Mi
{{- else if eq (mod $bytes 1000000) 0 }}{{ div $bytes 1000000 }}M
{{- else }}{{ $bytes }}{{ end }}
{{- end }}

{{/*
Bytes of the work dir's emptyDir: workDir.sizeLimit, else 2.5 x MME_MAX_SOURCE_BYTES rounded up
to whole GiB. Packaging holds the largest source and its archive at once, beside the archives
of file:// weights waiting for their upload (at most half a largest source).
*/}}
{{- define "mme-operator.workDirBytes" -}}
{{- $needed := div (mul (include "mme-operator.maxSourceBytes" . | int64) 5) 2 }}
{{- if .Values.workDir.sizeLimit }}
{{- $bytes := include "mme-operator.quantityBytes" .Values.workDir.sizeLimit | int64 }}
{{- if lt $bytes $needed }}
{{- fail (printf "workDir.sizeLimit %v is below 2.5 x config.maxSourceBytes (%s): packaging the largest source would overflow it and get the pod evicted; raise workDir.sizeLimit or lower config.maxSourceBytes" .Values.workDir.sizeLimit (include "mme-operator.bytesQuantity" $needed)) }}
{{- end }}
{{- $bytes }}
{{- else }}
{{- mul (div (add $needed 1073741823) 1073741824) 1073741824 }}
{{- end }}
{{- end }}

{{/*
The container's resources: the values' resources, plus ephemeral-storage where they do not
name it: the work dir on node disk (an emptyDir counts towards the pod's ephemeral storage)
plus 1Gi for the container's logs (the root filesystem is read-only), as request and limit.
*/}}
{{- define "mme-operator.resources" -}}
{{- $resources := deepCopy .Values.resources }}
{{- $work := include "mme-operator.workDirBytes" . | int64 }}
{{- $storage := 1073741824 }}
{{- if ne .Values.workDir.medium "Memory" }}
{{- $storage = add $work 1073741824 }}
{{- else }}
{{- $memory := include "mme-operator.quantityBytes" (dig "limits" "memory" "" $resources) | int64 }}
{{- if and (gt $memory 0) (le $memory $work) }}
{{- fail (printf "workDir.medium=Memory: the work dir (%s) is tmpfs and counts against resources.limits.memory (%v); raise the memory limit above workDir.sizeLimit plus what the operator uses (~256Mi), or use node disk (workDir.medium=\"\")" (include "mme-operator.bytesQuantity" $work) $resources.limits.memory) }}
{{- end }}
{{- end }}
{{- $requests := default dict $resources.requests }}
{{- $limits := default dict $resources.limits }}
{{- if not (hasKey $requests "ephemeral-storage") }}
{{- $_ := set $requests "ephemeral-storage" (include "mme-operator.bytesQuantity" $storage) }}
{{- end }}
{{- if not (hasKey $limits "ephemeral-storage") }}
{{- $_ := set $limits "ephemeral-storage" (include "mme-operator.bytesQuantity" $storage) }}
{{- end }}
{{- $_ := set $resources "requests" $requests }}
{{- $_ := set $resources "limits" $limits }}
{{- toYaml $resources }}
{{- end }}

{{/* Whether a listen address is a loopback one (reachable from inside the pod only). */}}
{{- define "mme-operator.isLoopback" -}}
{{- if or (hasPrefix "127." .) (eq . "::1") (eq . "localhost") }}true{{ end }}
{{- end }}

{{/* Whether the ServiceMonitor is wanted and the cluster serves its kind. */}}
{{- define "mme-operator.serviceMonitor" -}}
{{- if and .Values.metrics.enabled .Values.metrics.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor") }}true{{ end }}
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
# Models (kind Model): watched in memory (no finalizer, no annotation on them), their
# /status written by the pass of the endpoint they attach to.
- apiGroups: ["mme-operator.io"]
  resources: ["models"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["mme-operator.io"]
  resources: ["models/status"]
  verbs: ["patch"]
{{- end }}
