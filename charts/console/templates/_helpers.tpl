{{- define "console.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "console.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "console.labels" -}}
{{ include "console.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: model-console
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "console.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "console.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* web's identity: its own account when it starts validation Jobs (it then mounts a token,
bound to the validation Role only), else the console's. */}}
{{- define "console.webServiceAccountName" -}}
{{- if eq .Values.validation.runtime "kubernetes" -}}
{{- if .Values.serviceAccount.create -}}
{{- printf "%s-web" (include "console.serviceAccountName" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- required "serviceAccount.webName is required when serviceAccount.create is false and validation.runtime is kubernetes" .Values.serviceAccount.webName -}}
{{- end -}}
{{- else -}}
{{- include "console.serviceAccountName" . -}}
{{- end -}}
{{- end -}}

{{- define "console.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "console.fullname" .)) -}}
{{- end -}}

{{- define "console.modelsNamespace" -}}
{{- .Values.runtime.namespace | default .Release.Namespace -}}
{{- end -}}

{{- define "console.servingServiceAccount" -}}
{{- $sa := .Values.runtime.servingServiceAccount -}}
{{- if $sa.create -}}
{{- $sa.name | default (printf "%s-serving" (include "console.fullname" .)) -}}
{{- else -}}
{{- $sa.name -}}
{{- end -}}
{{- end -}}

{{/* repository@digest when a digest is set, else repository:tag. */}}
{{- define "console.image" -}}
{{- if .Values.image.digest -}}
"{{ .Values.image.repository }}@{{ .Values.image.digest }}"
{{- else -}}
"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
{{- end -}}
{{- end -}}

{{/* Environment shared by web, worker, beat and the migration job. The Secret's values are
files (NAME_FILE), not environment variables: child processes inherit a process's environment,
and model code must never see it. */}}
{{- define "console.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "console.fullname" . }}
env:
  - name: DATABASE_URL_FILE
    value: /etc/console/secrets/DATABASE_URL
  - name: CELERY_BROKER_URL_FILE
    value: /etc/console/secrets/CELERY_BROKER_URL
  - name: SECRET_KEY_FILE
    value: /etc/console/secrets/SECRET_KEY
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* The Secret's keys as files under /etc/console/secrets; `admin` adds the optional first
admin's password (only the migration job, which creates that admin, gets it). */}}
{{- define "console.secretVolume" -}}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "console.secretName" .root }}
          items:
            - {key: DATABASE_URL, path: DATABASE_URL}
            - {key: CELERY_BROKER_URL, path: CELERY_BROKER_URL}
            - {key: SECRET_KEY, path: SECRET_KEY}
      {{- if .admin }}
      - secret:
          name: {{ include "console.secretName" .root }}
          optional: true
          items:
            - {key: CONSOLE_ADMIN_PASSWORD, path: CONSOLE_ADMIN_PASSWORD}
      {{- end }}
{{- end -}}

{{/* Pod spec fields shared by every workload; `automount` says whether the token is mounted. */}}
{{- define "console.podCommon" -}}
serviceAccountName: {{ .serviceAccount | default (include "console.serviceAccountName" .root) }}
automountServiceAccountToken: {{ .automount }}
enableServiceLinks: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The root filesystem is read-only: /tmp and the console's scratch folders under var/
(uploads in progress, the file cache) are emptyDirs; var/static comes from the image. */}}
{{- define "console.volumeMounts" -}}
volumeMounts:
  - name: secrets
    mountPath: /etc/console/secrets
    readOnly: true
  - name: tmp
    mountPath: /tmp
  - name: uploads
    mountPath: /app/var/uploads
  - name: cache
    mountPath: /app/var/cache
  {{- if .Values.persistence.enabled }}
  - name: data
    mountPath: {{ .Values.persistence.mountPath }}
  {{- end }}
{{- end -}}

{{- define "console.volumes" -}}
volumes:
  {{- include "console.secretVolume" (dict "root" .root "admin" .admin) | nindent 2 }}
  - name: tmp
    emptyDir: {}
  - name: uploads
    emptyDir: {}
  - name: cache
    emptyDir: {}
  {{- if .root.Values.persistence.enabled }}
  - name: data
    persistentVolumeClaim:
      claimName: {{ required "persistence.existingClaim is required when persistence is enabled" .root.Values.persistence.existingClaim }}
  {{- end }}
{{- end -}}
