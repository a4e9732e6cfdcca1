{{- define "features.name" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end -}}
{{- define "features.loop" -}}{{ include "features.loop" . }}{{- end -}}
