{{/* bitnami common's pattern: the data of a Secret that lookup does not find (an empty map in template mode). */}}
{{- define "realworld.existing" -}}
{{- $secret := (lookup "v1" "Secret" .Release.Namespace "absent").data -}}
{{- if hasKey $secret "password" }}found{{ else }}absent{{ end -}}
{{- end -}}
