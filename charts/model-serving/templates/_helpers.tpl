{{/* Object names: the release name unless overridden (one model per release). */}}
{{- define "model-serving.fullname" -}}
{{- .Values.fullnameOverride | default .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Pick the pods of this release; immutable once the Deployment exists. */}}
{{- define "model-serving.selectorLabels" -}}
app.kubernetes.io/name: model-serving
app.kubernetes.io/instance: {{ include "model-serving.fullname" . }}
{{- end -}}

{{- define "model-serving.labels" -}}
{{ include "model-serving.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: serving
app.kubernetes.io/part-of: model-console
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "model-serving.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "model-serving.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The serving config file; its sha256 rolls the pods when it changes. */}}
{{- define "model-serving.config" -}}
{{ toYaml .Values.config }}{{ "\n" }}
{{- end -}}

{{/* The port serving's gRPC service listens on: config.grpcPort (0: off), else its default. */}}
{{- define "model-serving.grpcPort" -}}
{{- if hasKey .Values.config "grpcPort" }}{{ int .Values.config.grpcPort }}{{ else }}8081{{ end }}
{{- end }}

{{/* repository@digest when a digest is set, else repository:tag. */}}
{{- define "model-serving.image" -}}
{{- if .Values.image.digest -}}
"{{ .Values.image.repository }}@{{ .Values.image.digest }}"
{{- else -}}
"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
{{- end -}}
{{- end -}}
