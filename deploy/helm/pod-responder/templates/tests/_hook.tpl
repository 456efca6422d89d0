{{/* Test pods: made by `helm test`, replaced by the next one, kept after it so their logs can be read. */}}
{{- define "pod-responder.testHook" -}}
helm.sh/hook: test
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}
