{{/*
Shared helpers of the lakehouse chart. Every helper is namespaced "lakehouse.*"; component
helpers live next to their templates ("lakehouse.airflow.*") or here ("lakehouse.objectStore.*",
"lakehouse.postgres.*", ...).
Helpers that take more than the root context take a dict: (dict "root" $ "component" "mlflow").
*/}}

{{- define "lakehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lakehouse.fullname" -}}
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

{{/* "<fullname>-<component>", the name of a component's objects. */}}
{{- define "lakehouse.componentName" -}}
{{- printf "%s-%s" (include "lakehouse.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lakehouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of a component: (dict "root" $ "component" "minio"). */}}
{{- define "lakehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lakehouse.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of a component's pods: (dict "root" $ "component" "minio"). No helm.sh/chart: a
     chart built from git gets the commit as version metadata, so a pod template carrying it
     would restart on every commit, and a Job's immutable template would fail the upgrade. */}}
{{- define "lakehouse.podLabels" -}}
{{ include "lakehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: lakehouse
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Standard labels of a component's objects: (dict "root" $ "component" "minio"). */}}
{{- define "lakehouse.labels" -}}
{{ include "lakehouse.selectorLabels" . }}
helm.sh/chart: {{ include "lakehouse.chart" .root }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: lakehouse
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image reference from an image block; tag defaults to the chart appVersion. */}}
{{- define "lakehouse.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- if .image.digest -}}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context: non-root, fixed uid/gid, RuntimeDefault seccomp.
     (dict "uid" 10001): uids >= 10000 never match an account of the node (checkov CKV_K8S_40). */}}
{{- define "lakehouse.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context: no privilege escalation, all capabilities dropped. */}}
{{- define "lakehouse.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "lakehouse.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* ---------------------------------------------------------------- endpoints and names */}}

{{- define "lakehouse.configMapName" -}}
{{- printf "%s-settings" (include "lakehouse.fullname" .) -}}
{{- end -}}

{{/* The pipeline contract the DAGs and `make ingest` read (common/pipeline-configmap.yaml). */}}
{{- define "lakehouse.pipelineConfigMapName" -}}
{{- printf "%s-pipeline" (include "lakehouse.fullname" .) -}}
{{- end -}}

{{/* The label a client pod carries to pass a server's NetworkPolicy: "object-store" ->
     lakehouse/object-store-client. */}}
{{- define "lakehouse.clientLabel" -}}
{{- printf "lakehouse/%s-client" . -}}
{{- end -}}

{{- define "lakehouse.generatedSecretName" -}}
{{- printf "%s-credentials" (include "lakehouse.fullname" .) -}}
{{- end -}}

{{/* The object store every S3 client uses. One place names it: the bundled server of
     objectStore.server (its component, Service and S3 port), else objectStore.external.endpoint.
     Each server's templates live in templates/<server>/ and render only when it is the one. */}}

{{/* The bundled servers the chart knows. */}}
{{- define "lakehouse.objectStore.servers" -}}
seaweedfs minio
{{- end -}}

{{/* The bundled server that is deployed ("seaweedfs" or "minio"), "" for an external store. */}}
{{- define "lakehouse.objectStore.server" -}}
{{- if .Values.objectStore.enabled -}}{{ .Values.objectStore.server }}{{- end -}}
{{- end -}}

{{/* Name of the bundled server's Service (and StatefulSet): "<fullname>-<server>". */}}
{{- define "lakehouse.objectStore.serviceName" -}}
{{- include "lakehouse.componentName" (dict "root" . "component" .Values.objectStore.server) -}}
{{- end -}}

{{/* S3 port of the bundled server (SeaweedFS's gateway: 8333, MinIO: 9000). */}}
{{- define "lakehouse.objectStore.s3Port" -}}
{{- if eq .Values.objectStore.server "minio" -}}9000{{- else -}}8333{{- end -}}
{{- end -}}

{{/* LAKEHOUSE_S3_ENDPOINT: the bundled server's Service, else the external endpoint. */}}
{{- define "lakehouse.s3Endpoint" -}}
{{- if include "lakehouse.objectStore.server" . -}}
{{- printf "http://%s:%s" (include "lakehouse.objectStore.serviceName" .) (include "lakehouse.objectStore.s3Port" .) -}}
{{- else -}}
{{- .Values.objectStore.external.endpoint -}}
{{- end -}}
{{- end -}}

{{/* The PostgreSQL server every database client uses: the bundled one, else postgres.external. */}}
{{- define "lakehouse.postgresHost" -}}
{{- if .Values.postgres.enabled -}}
{{- include "lakehouse.componentName" (dict "root" . "component" "postgres") -}}
{{- else -}}
{{- .Values.postgres.external.host -}}
{{- end -}}
{{- end -}}

{{- define "lakehouse.postgresPort" -}}
{{- if .Values.postgres.enabled -}}5432{{- else -}}{{ .Values.postgres.external.port }}{{- end -}}
{{- end -}}

{{/* "true" when the init Job creates the roles and databases: always for the bundled server,
     for an external one only when asked (postgres.external.runInit). */}}
{{- define "lakehouse.postgres.runsInit" -}}
{{- if or .Values.postgres.enabled .Values.postgres.external.runInit -}}true{{- end -}}
{{- end -}}

{{- define "lakehouse.catalogUri" -}}
{{- printf "jdbc:postgresql://%s:%s/%s" (include "lakehouse.postgresHost" .) (include "lakehouse.postgresPort" .) .Values.postgres.databases.catalog -}}
{{- end -}}

{{- define "lakehouse.mlflowUri" -}}
{{- printf "http://%s:5000" (include "lakehouse.componentName" (dict "root" . "component" "mlflow")) -}}
{{- end -}}

{{/* ---------------------------------------------------------------- credentials */}}

{{/* The Secret holding credential .cred: (dict "root" $ "cred" "catalog"). */}}
{{- define "lakehouse.credentials.secretName" -}}
{{- $all := .root.Values.credentials -}}
{{- $c := index $all .cred -}}
{{- coalesce $c.existingSecret $all.existingSecret (include "lakehouse.generatedSecretName" .root) -}}
{{- end -}}

{{/* "true" when credential .cred lives in the generated Secret. */}}
{{- define "lakehouse.credentials.isGenerated" -}}
{{- $all := .root.Values.credentials -}}
{{- $c := index $all .cred -}}
{{- if not (or $c.existingSecret $all.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/* One env entry read from a credential's Secret:
     (dict "root" $ "cred" "catalog" "keyField" "passwordKey" "env" "PGPASSWORD"). */}}
{{- define "lakehouse.credentials.env" -}}
{{- $c := index .root.Values.credentials .cred -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "lakehouse.credentials.secretName" . }}
      key: {{ index $c .keyField }}
{{- end -}}

{{/* The S3 client environment: settings ConfigMap + the object-store key pair. */}}
{{- define "lakehouse.s3ClientEnv" -}}
{{ include "lakehouse.credentials.env" (dict "root" .root "cred" "objectStore" "keyField" "accessKeyKey" "env" "AWS_ACCESS_KEY_ID") }}
{{ include "lakehouse.credentials.env" (dict "root" .root "cred" "objectStore" "keyField" "secretKeyKey" "env" "AWS_SECRET_ACCESS_KEY") }}
{{- end -}}

{{/* Checksum of the settings ConfigMap, for pod annotations (restart on settings change). */}}
{{- define "lakehouse.settingsChecksum" -}}
{{- include "lakehouse.dataChecksum" (dict "root" . "template" "/common/configmap.yaml") -}}
{{- end -}}

{{/* Checksum of a ConfigMap template's data only (dict "root" $ "template" "/x/configmap.yaml"):
     its labels carry the chart version, which changes with every commit Flux builds. */}}
{{- define "lakehouse.dataChecksum" -}}
{{- (include (print .root.Template.BasePath .template) .root | fromYaml).data | toJson | sha256sum -}}
{{- end -}}

{{/* ---------------------------------------------------------------- validation */}}

{{/* Invalid combinations fail here, each message naming the key to change. */}}
{{- define "lakehouse.validate" -}}
{{- $v := .Values -}}
{{- include "lakehouse.objectStore.validate" . -}}
{{- include "lakehouse.postgres.validate" . -}}
{{- $dbs := list $v.postgres.databases.catalog $v.postgres.databases.mlflow $v.postgres.databases.airflow -}}
{{- if ne (len ($dbs | uniq)) 3 -}}
{{- fail "postgres.databases: catalog, mlflow and airflow must be three different database names" -}}
{{- end -}}
{{- $buckets := values $v.objectStore.buckets -}}
{{- if ne (len ($buckets | uniq)) (len $buckets) -}}
{{- fail "objectStore.buckets: every bucket name must be different" -}}
{{- end -}}
{{- include "lakehouse.airflow.validate" . -}}
{{- end -}}

{{/* The bundled object store (a known server) or an external one, and the keys each needs.
     The schema's enum rejects an unknown server first; this fail also holds without the schema
     (helm --skip-schema-validation). */}}
{{- define "lakehouse.objectStore.validate" -}}
{{- $o := .Values.objectStore -}}
{{- if not (has (toString $o.server) (splitList " " (include "lakehouse.objectStore.servers" .))) -}}
{{- fail (printf "objectStore.server is %q: set it to seaweedfs or minio" (toString $o.server)) -}}
{{- end -}}
{{- if and $o.enabled $o.external.endpoint -}}
{{- fail "objectStore.external.endpoint is set while objectStore.enabled is true: set objectStore.enabled=false to use an external S3 endpoint, or clear objectStore.external.endpoint" -}}
{{- end -}}
{{- if not $o.enabled -}}
{{- if not $o.external.endpoint -}}
{{- fail "objectStore.enabled is false: set objectStore.external.endpoint to the S3 endpoint to use instead" -}}
{{- end -}}
{{- if include "lakehouse.credentials.isGenerated" (dict "root" . "cred" "objectStore") -}}
{{- fail "objectStore.enabled is false: generated S3 keys would match no server; set credentials.objectStore.existingSecret (or credentials.existingSecret) to the external store's keys" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The bundled PostgreSQL or an external one, and the credentials each needs. */}}
{{- define "lakehouse.postgres.validate" -}}
{{- $pg := .Values.postgres -}}
{{- if and $pg.enabled $pg.external.host -}}
{{- fail "postgres.external.host is set while postgres.enabled is true: set postgres.enabled=false to use an external PostgreSQL server, or clear postgres.external.host" -}}
{{- end -}}
{{- if not $pg.enabled -}}
{{- if not $pg.external.host -}}
{{- fail "postgres.enabled is false: set postgres.external.host to the PostgreSQL server that holds the catalog, MLflow and Airflow databases" -}}
{{- end -}}
{{- if $pg.external.runInit -}}
{{- if include "lakehouse.credentials.isGenerated" (dict "root" . "cred" "postgres") -}}
{{- fail "postgres.external.runInit is true: a generated admin password would match no server; set credentials.postgres.existingSecret (or credentials.existingSecret) to the password of postgres.external.adminUser" -}}
{{- end -}}
{{- else -}}
{{- /* Without the init Job the roles already exist: their passwords cannot be generated here. */ -}}
{{- $roles := list "catalog" -}}
{{- if .Values.mlflow.enabled -}}{{- $roles = append $roles "mlflowDb" -}}{{- end -}}
{{- if .Values.airflow.enabled -}}{{- $roles = append $roles "airflowDb" -}}{{- end -}}
{{- range $cred := $roles -}}
{{- if include "lakehouse.credentials.isGenerated" (dict "root" $ "cred" $cred) -}}
{{- fail (printf "postgres.enabled is false and postgres.external.runInit is false: set credentials.%s.existingSecret (or credentials.existingSecret) to the role that exists on the external server, or set postgres.external.runInit=true to create it" $cred) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- network policies */}}

{{/* A server reachable only from opted-in clients: ingress to the server's pods from pods
     labelled with the client label of .client (lakehouse.clientLabel) on <ports>, and egress from those clients to the server.
     (dict "root" $ "component" "seaweedfs" "client" "object-store" "ports" (list 8333)) */}}
{{- define "lakehouse.networkPolicy.server" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "lakehouse.componentName" (dict "root" .root "component" (printf "%s-ingress" .component)) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "lakehouse.labels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "lakehouse.selectorLabels" (dict "root" .root "component" .component) | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchLabels:
              {{ include "lakehouse.clientLabel" .client }}: "true"
      ports:
        {{- range .ports }}
        - {protocol: TCP, port: {{ . }}}
        {{- end }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "lakehouse.componentName" (dict "root" .root "component" (printf "%s-clients" .component)) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "lakehouse.labels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{ include "lakehouse.clientLabel" .client }}: "true"
  policyTypes: [Egress]
  egress:
    - to:
        - podSelector:
            matchLabels:
              {{- include "lakehouse.selectorLabels" (dict "root" .root "component" .component) | nindent 14 }}
      ports:
        {{- range .ports }}
        - {protocol: TCP, port: {{ . }}}
        {{- end }}
{{- end -}}
