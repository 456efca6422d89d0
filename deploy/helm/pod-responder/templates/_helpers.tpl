{{/* The chart's name, or nameOverride: the app.kubernetes.io/name label and part of every object's name. */}}
{{- define "pod-responder.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Objects' name prefix: fullnameOverride, else <release>-<name> (just <release> when it already contains the name).
At most 44 characters, so with the longest suffix (-forwarder-headless) a Service name stays within DNS's 63.
*/}}
{{- define "pod-responder.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 44 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}{{ .Release.Name | trunc 44 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name $name | trunc 44 | trimSuffix "-" }}{{- end -}}
{{- end -}}
{{- end -}}

{{/* What selects a component's pods: never changes across upgrades (selectors are immutable). Takes (dict "root" $ "component" "worker"). */}}
{{- define "pod-responder.selector" -}}
app.kubernetes.io/name: {{ include "pod-responder.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The recommended labels (kubernetes.io/docs/concepts/overview/working-with-objects/common-labels), on every object and pod. Same argument. */}}
{{- define "pod-responder.labels" -}}
{{ include "pod-responder.selector" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: pod-responder
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
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

{{/*
apiServer: where pods reach the Kubernetes API, for clusters where the `kubernetes` Service's ClusterIP (which the
kubelet puts in KUBERNETES_SERVICE_HOST/PORT) does not route: no kube-proxy nor a replacement. Empty: the kubelet's.
*/}}
{{- define "pod-responder.apiServerEnv" -}}
{{- with .Values.apiServer.host }}
- { name: KUBERNETES_SERVICE_HOST, value: {{ . | quote }} }
- { name: KUBERNETES_SERVICE_PORT, value: {{ $.Values.apiServer.port | quote }} }
{{- end }}
{{- end -}}
