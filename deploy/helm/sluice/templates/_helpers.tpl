{{/* Names and labels. */}}
{{- define "sluice.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sluice.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sluice.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "sluice.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Each role's port: ingest and api serve MLflow, the writer only /health and /metrics. */}}
{{- define "sluice.port" -}}
{{- get (dict "ingest" 5001 "api" 5002 "writer" 5003) . -}}
{{- end -}}

{{/* The environment every Sluice container gets (services and the migration Job). */}}
{{- define "sluice.env" -}}
- {name: SLUICE_INGEST_HOST, value: "0.0.0.0"}
- {name: SLUICE_API_HOST, value: "0.0.0.0"}
- {name: SLUICE_WRITER_HOST, value: "0.0.0.0"}
- {name: SLUICE_KAFKA_BOOTSTRAP, value: {{ .Values.kafka.bootstrap | quote }}}
- {name: SLUICE_KAFKA_TOPIC, value: {{ .Values.kafka.topic | quote }}}
- {name: SLUICE_KAFKA_PARTITIONS, value: {{ .Values.kafka.partitions | quote }}}
- {name: SLUICE_KAFKA_REPLICATION_FACTOR, value: {{ .Values.kafka.replicationFactor | quote }}}
- {name: SLUICE_KAFKA_MIN_INSYNC_REPLICAS, value: {{ .Values.kafka.minInsyncReplicas | quote }}}
- {name: SLUICE_KAFKA_SECURITY_PROTOCOL, value: {{ .Values.kafka.securityProtocol | quote }}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}
- {name: SLUICE_KAFKA_SASL_MECHANISM, value: {{ .Values.kafka.saslMechanism | quote }}}
- {name: SLUICE_KAFKA_SASL_USERNAME, value: {{ required "kafka.saslUsername is required for SASL" .Values.kafka.saslUsername | quote }}}
- {name: SLUICE_KAFKA_SASL_PASSWORD_FILE, value: /var/run/secrets/sluice/{{ required "secretKeys.kafkaSaslPassword is required for SASL" .Values.secretKeys.kafkaSaslPassword }}}
{{- end }}
{{- if .Values.kafka.caSecret }}
- {name: SLUICE_KAFKA_SSL_CAFILE, value: /var/run/secrets/kafka-ca/ca.crt}
{{- end }}
{{- if .Values.existingSecret }}
- {name: SLUICE_PG_DSN_FILE, value: /var/run/secrets/sluice/{{ .Values.secretKeys.pgDsn }}}
{{- else }}
- {name: SLUICE_PG_DSN, value: {{ required "postgres.dsn or existingSecret is required" .Values.postgres.dsn | quote }}}
{{- end }}
- {name: SLUICE_API_ARTIFACT_ROOT, value: {{ .Values.artifacts.root | quote }}}
{{- with .Values.artifacts.s3EndpointUrl }}
- {name: SLUICE_API_ARTIFACT_S3_ENDPOINT_URL, value: {{ . | quote }}}
{{- end }}
{{- with .Values.artifacts.awsAccessKeyId }}
- {name: AWS_ACCESS_KEY_ID, value: {{ . | quote }}}
{{- end }}
{{- if and .Values.existingSecret .Values.secretKeys.webhookSecretKeys }}
- {name: SLUICE_WEBHOOKS_SECRET_KEYS_FILE, value: /var/run/secrets/sluice/{{ .Values.secretKeys.webhookSecretKeys }}}
{{- end }}
{{- if and .Values.existingSecret .Values.secretKeys.awsSecretAccessKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ .Values.existingSecret }}, key: {{ .Values.secretKeys.awsSecretAccessKey }}}}
{{- end }}
- {name: AWS_DEFAULT_REGION, value: {{ .Values.artifacts.awsRegion | quote }}}
{{- with .Values.publicUrl }}
- {name: SLUICE_API_PUBLIC_URL, value: {{ . | quote }}}
{{- end }}
{{- range $name, $value := .Values.extraEnv }}
- {name: {{ $name }}, value: {{ $value | quote }}}
{{- end }}
{{- end -}}

{{/* Secret files and a writable /tmp (the root filesystem is read-only). */}}
{{- define "sluice.volumeMounts" -}}
- {name: tmp, mountPath: /tmp}
{{- if .Values.existingSecret }}
- {name: secrets, mountPath: /var/run/secrets/sluice, readOnly: true}
{{- end }}
{{- if .Values.kafka.caSecret }}
- {name: kafka-ca, mountPath: /var/run/secrets/kafka-ca, readOnly: true}
{{- end }}
{{- end -}}

{{- define "sluice.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.existingSecret }}
- name: secrets
  secret: {secretName: {{ .Values.existingSecret }}, defaultMode: 0440}
{{- end }}
{{- if .Values.kafka.caSecret }}
- name: kafka-ca
  secret: {secretName: {{ .Values.kafka.caSecret }}}
{{- end }}
{{- end -}}
