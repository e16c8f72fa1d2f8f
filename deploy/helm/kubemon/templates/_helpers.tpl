{{/* The chart's name. */}}
{{- define "kubemon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Base name of the objects: the release name when it contains the chart's name. */}}
{{- define "kubemon.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kubemon.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{- define "kubemon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubemon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubemon.labels" -}}
{{ include "kubemon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kubemon.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString (default .Chart.AppVersion .Values.image.tag)) -}}
{{- end -}}

{{/* Whether kubemon serves an aggregated API (--metrics-api-listen). */}}
{{- define "kubemon.aggregated" -}}
{{- if or .Values.metricsAPI.enabled .Values.kubemonAPI.enabled }}true{{ end -}}
{{- end -}}

{{/* Name of the TLS Secret mounted for the aggregated APIs, or "". */}}
{{- define "kubemon.tlsSecret" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else if .Values.tls.generate -}}
{{- printf "%s-tls" (include "kubemon.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Name of the data PersistentVolumeClaim. */}}
{{- define "kubemon.claimName" -}}
{{- default (printf "%s-data" (include "kubemon.fullname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{/*
A Kubernetes quantity ("10Gi", "500Mi", "1Ti", "20G") in whole MiB, rounded
down. Only whole numbers with a binary or decimal suffix are accepted.
*/}}
{{- define "kubemon.mebibytes" -}}
{{- $s := toString . -}}
{{- $n := regexFind "^[0-9]+" $s -}}
{{- $u := trimPrefix $n $s -}}
{{- if not $n -}}
{{- fail (printf "size %q: want a whole number with a unit, such as 10Gi" $s) -}}
{{- end -}}
{{- $v := atoi $n -}}
{{- if eq $u "Ki" -}}{{ div $v 1024 }}
{{- else if eq $u "Mi" -}}{{ $v }}
{{- else if eq $u "Gi" -}}{{ mul $v 1024 }}
{{- else if eq $u "Ti" -}}{{ mul $v 1048576 }}
{{- else if eq $u "M" -}}{{ div (mul $v 1000000) 1048576 }}
{{- else if eq $u "G" -}}{{ div (mul $v 1000000000) 1048576 }}
{{- else if eq $u "T" -}}{{ div (mul $v 1000000000000) 1048576 }}
{{- else -}}
{{- fail (printf "size %q: want Ki, Mi, Gi, Ti, M, G or T" $s) -}}
{{- end -}}
{{- end -}}

{{/*
--retention-size: retentionSize, or 80 % of the data volume (persistence.size
or emptyDir.sizeLimit) in GiB when whole, else in MiB (10Gi -> 8GiB).
*/}}
{{- define "kubemon.retentionSize" -}}
{{- if .Values.retentionSize -}}
{{- .Values.retentionSize -}}
{{- else -}}
{{- $size := ternary .Values.persistence.size .Values.emptyDir.sizeLimit .Values.persistence.enabled -}}
{{- $mi := div (mul (include "kubemon.mebibytes" $size | atoi) 8) 10 -}}
{{- if lt $mi 1 -}}
{{- fail (printf "data volume size %q is too small" (toString $size)) -}}
{{- end -}}
{{- if eq (mod $mi 1024) 0 -}}
{{- printf "%dGiB" (div $mi 1024) -}}
{{- else -}}
{{- printf "%dMiB" $mi -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The container's resources: .Values.resources, or from sizing (values.yaml):
  memory request = 128Mi + containers × 56Ki, rounded up to Mi
  memory limit   = 2 × request
*/}}
{{- define "kubemon.resources" -}}
{{- if .Values.resources -}}
{{- toYaml .Values.resources -}}
{{- else -}}
{{- $s := .Values.sizing -}}
{{- $containers := mul (int64 $s.nodes) (int64 $s.podsPerNode) (int64 $s.containersPerPod) -}}
{{- $ki := add 131072 (mul $containers 56) -}}
{{- $mi := div (add $ki 1023) 1024 -}}
requests:
  cpu: {{ $s.cpuRequest }}
  memory: {{ $mi }}Mi
limits:
  memory: {{ mul $mi 2 }}Mi
{{- end -}}
{{- end -}}

{{/*
Name of the ConfigMap of rule files mounted at /etc/kubemon/rules, or "" when
there is none (rules.existingConfigMap, else <fullname>-rules when rules.files
has any file). Fails on a file name kubemon's glob would not read.
*/}}
{{- define "kubemon.rulesConfigMap" -}}
{{- if .Values.rules.existingConfigMap -}}
{{- .Values.rules.existingConfigMap -}}
{{- else -}}
{{- $files := dict -}}
{{- range $name, $content := .Values.rules.files -}}
{{- if not (kindIs "invalid" $content) -}}
{{- if not (regexMatch "^[-._a-zA-Z0-9]+\\.yaml$" $name) -}}
{{- fail (printf "rules.files: %q: a file name of letters, digits, '-', '_' and '.', ending in .yaml (kubemon reads /etc/kubemon/rules/*.yaml)" $name) -}}
{{- end -}}
{{- $_ := set $files $name $content -}}
{{- end -}}
{{- end -}}
{{- if $files -}}
{{- printf "%s-rules" (include "kubemon.fullname" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The rule, alerting and events arguments of `kubemon serve`, each only when it
differs from kubemon's default (so the defaults render as the Kustomize base).
*/}}
{{- define "kubemon.alertArgs" -}}
{{- $rules := include "kubemon.rulesConfigMap" . -}}
{{- $a := .Values.alerting -}}
{{- if $rules }}
- --rules=/etc/kubemon/rules/*.yaml
{{- end }}
{{- if not .Values.rules.defaultPack }}
- --default-rules=false
{{- end }}
{{- with .Values.rules.evaluationInterval }}
- {{ printf "--rules.evaluation-interval=%v" . | quote }}
{{- end }}
{{- range $a.alertmanagers }}
- {{ printf "--alertmanager-url=%s" . | quote }}
{{- end }}
{{- range $a.webhooks }}
- {{ printf "--alert-webhook-url=%s" . | quote }}
{{- end }}
{{- range $name, $value := $a.externalLabels }}
- {{ printf "--alert-external-label=%s=%v" $name $value | quote }}
{{- end }}
{{- with $a.externalURL }}
- {{ printf "--alert-external-url=%s" . | quote }}
{{- end }}
{{- if not .Values.events.enabled }}
- --events.enabled=false
{{- end }}
{{- with .Values.events.retention }}
- {{ printf "--events.retention=%v" . | quote }}
{{- end }}
{{- with .Values.events.maxSize }}
- {{ printf "--events.max-size=%v" . | quote }}
{{- end }}
{{- if and (or $a.alertmanagers $a.webhooks) (not .Values.rules.defaultPack) (not $rules) }}
{{- fail "alerting: alerts are sent but no rules are evaluated (rules.defaultPack is false, and neither rules.files nor rules.existingConfigMap is set)" }}
{{- end }}
{{- end -}}
