{{- define "pod-responder.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "pod-responder.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pod-responder.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "pod-responder.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "pod-responder.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "pod-responder.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* Environment both programs share: where Temporal is, how to reach it securely, the config file. */}}
{{- define "pod-responder.commonEnv" -}}
- { name: TEMPORAL_ADDRESS, value: {{ .Values.temporal.address | quote }} }
- { name: TEMPORAL_NAMESPACE, value: {{ .Values.temporal.namespace | quote }} }
- { name: POD_RESPONDER_TASK_QUEUE, value: {{ .Values.temporal.taskQueue | quote }} }
- { name: TEMPORAL_UI_URL, value: {{ .Values.temporal.uiUrl | quote }} }
- { name: POD_RESPONDER_CONFIG, value: /etc/pod-responder/config/config.json }
{{- if or .Values.temporal.tls.enabled .Values.temporal.tls.existingSecret .Values.temporal.apiKey.existingSecret }}
- { name: POD_RESPONDER_TEMPORAL_TLS, value: "true" }
{{- end }}
{{- with .Values.temporal.tls.existingSecret }}
- { name: POD_RESPONDER_TEMPORAL_TLS_CA, value: /etc/pod-responder/temporal-tls/ca.crt }
- { name: POD_RESPONDER_TEMPORAL_TLS_CERT, value: /etc/pod-responder/temporal-tls/tls.crt }
- { name: POD_RESPONDER_TEMPORAL_TLS_KEY, value: /etc/pod-responder/temporal-tls/tls.key }
{{- end }}
{{- with .Values.temporal.tls.serverName }}
- { name: POD_RESPONDER_TEMPORAL_TLS_SERVER_NAME, value: {{ . | quote }} }
{{- end }}
{{- if .Values.temporal.apiKey.existingSecret }}
- { name: POD_RESPONDER_TEMPORAL_API_KEY_FILE, value: /etc/pod-responder/temporal-api-key/{{ .Values.temporal.apiKey.key }} }
{{- end }}
{{- end -}}

{{- define "pod-responder.commonVolumeMounts" -}}
- { name: config, mountPath: /etc/pod-responder/config, readOnly: true }
- { name: tmp, mountPath: /tmp }
{{- if .Values.temporal.tls.existingSecret }}
- { name: temporal-tls, mountPath: /etc/pod-responder/temporal-tls, readOnly: true }
{{- end }}
{{- if .Values.temporal.apiKey.existingSecret }}
- { name: temporal-api-key, mountPath: /etc/pod-responder/temporal-api-key, readOnly: true }
{{- end }}
{{- end -}}

{{- define "pod-responder.commonVolumes" -}}
- name: config
  configMap: { name: {{ include "pod-responder.fullname" . }} }
- name: tmp
  emptyDir: { sizeLimit: 256Mi }
{{- with .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  secret: { secretName: {{ . }} }
{{- end }}
{{- with .Values.temporal.apiKey.existingSecret }}
- name: temporal-api-key
  secret: { secretName: {{ . }} }
{{- end }}
{{- end -}}
