{{- define "roster.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "roster.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "roster.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "roster.serviceAccountName" -}}
{{- default (include "roster.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/*
The namespaces roster serves, as a JSON list: tenantNamespaces plus the older
watchNamespace, without duplicates. Empty means every namespace.
*/}}
{{- define "roster.tenantNamespaces" -}}
{{- $namespaces := concat (.Values.tenantNamespaces | default list) (ternary (list .Values.watchNamespace) list (ne .Values.watchNamespace "")) -}}
{{- $namespaces | uniq | toJson -}}
{{- end -}}
