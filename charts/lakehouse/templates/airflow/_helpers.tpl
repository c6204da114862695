{{/*
Helpers of the Airflow component ("lakehouse.airflow.*"). Every Airflow pod reads the same
airflow.cfg (ConfigMap <fullname>-airflow-config) and the lakehouse settings ConfigMap; secrets
reach each component as env vars from secretKeyRefs, and only the ones it needs:

  component      metadata DB  Fernet  JWT  API key  S3 keys  Kubernetes API
  api-server     yes          yes     yes  yes      yes      pods/log (podLogReading)
  scheduler      yes          yes     yes  -        -        worker pods
  dag-processor  yes          yes     yes  -        yes      -
  triggerer      yes          yes     yes  -        yes      -
  worker pod     -            -       -    -        yes      SparkApplications, pods (jobs ns)

Workers never touch the metadata database: Airflow 3 workers report through the execution API
of the api-server with a short-lived token the scheduler signs. The dag-processor and triggerer
run that API in-process, whose app still loads the JWT validator at start, hence the secret.
*/}}

{{- define "lakehouse.airflow.name" -}}
{{- include "lakehouse.componentName" (dict "root" .root "component" (printf "airflow-%s" .component)) -}}
{{- end -}}

{{/* Namespace of the SparkApplications and stage pods: the operator's first job namespace. */}}
{{- define "lakehouse.airflow.jobsNamespace" -}}
{{- $so := index .Values "spark-operator" -}}
{{- $nss := dig "spark" "jobNamespaces" (list) $so -}}
{{- default .Release.Namespace (first $nss) -}}
{{- end -}}

{{/* The driver ServiceAccount the upstream operator chart creates in the job namespaces. */}}
{{- define "lakehouse.airflow.sparkServiceAccount" -}}
{{- $so := index .Values "spark-operator" -}}
{{- $name := dig "spark" "serviceAccount" "name" "" $so -}}
{{- default (printf "%s-spark-operator-spark" .Release.Name) $name -}}
{{- end -}}

{{- define "lakehouse.airflow.executionApiUrl" -}}
{{- printf "http://%s:8080/execution/" (include "lakehouse.airflow.name" (dict "root" . "component" "api-server")) -}}
{{- end -}}

{{- define "lakehouse.airflow.dagsFolder" -}}
{{- $g := .Values.airflow.gitSync -}}
{{- if $g.enabled -}}
{{- trimSuffix "/" (printf "/opt/airflow/git/repo/%s" $g.subPath) -}}
{{- else -}}
/opt/airflow/dags
{{- end -}}
{{- end -}}

{{/* Invalid combinations of the airflow block (called from lakehouse.validate). */}}
{{- define "lakehouse.airflow.validate" -}}
{{- $a := .Values.airflow -}}
{{- if $a.enabled -}}
{{- if and $a.gitSync.enabled (not $a.gitSync.repo) -}}
{{- fail "airflow.gitSync.enabled is true: set airflow.gitSync.repo to the repository holding the DAGs" -}}
{{- end -}}
{{- $jobs := include "lakehouse.airflow.jobsNamespace" . -}}
{{- if ne $jobs .Release.Namespace -}}
{{- fail (printf "spark-operator.spark.jobNamespaces[0] is %q but the release is installed into %q: the DAGs' pods read the settings ConfigMap and the credentials Secret of their own namespace; install the release into %q or set spark-operator.spark.jobNamespaces={%s}" $jobs .Release.Namespace $jobs .Release.Namespace) -}}
{{- end -}}
{{- if and $a.remoteLogging (not (include "lakehouse.s3Endpoint" .)) -}}
{{- fail "airflow.remoteLogging needs an object store: set objectStore.enabled=true or objectStore.external.endpoint" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Adds Airflow's generated secrets to the credentials Secret's data (called by
     common/secret.yaml): (dict "root" $ "data" $data "live" $liveData). The Fernet key is the
     base64 of 32 random characters: 32 bytes once decoded, as Fernet requires. */}}
{{- define "lakehouse.airflow.generateSecrets" -}}
{{- $c := .root.Values.credentials.airflow -}}
{{- $data := .data -}}
{{- $live := .live -}}
{{- $_ := set $data $c.fernetKeyKey (get $live $c.fernetKeyKey | default (randAlphaNum 32 | b64enc | b64enc)) -}}
{{- $_ := set $data $c.apiSecretKeyKey (get $live $c.apiSecretKeyKey | default (randAlphaNum 64 | b64enc)) -}}
{{- $_ := set $data $c.jwtSecretKey (get $live $c.jwtSecretKey | default (randAlphaNum 64 | b64enc)) -}}
{{- $_ := set $data $c.adminPasswordKey (get $live $c.adminPasswordKey | default (randAlphaNum 24 | b64enc)) -}}
{{- end -}}

{{/* Pod labels of an Airflow component plus its NetworkPolicy opt-ins:
     (dict "root" $ "component" "scheduler" "clients" (list "postgres" "kube-api")). */}}
{{- define "lakehouse.airflow.podLabels" -}}
{{ include "lakehouse.podLabels" (dict "root" .root "component" (printf "airflow-%s" .component)) }}
{{- range .clients }}
{{ include "lakehouse.clientLabel" . }}: "true"
{{- end }}
{{- end -}}

{{/* Env of an Airflow container: (dict "root" $ "db" true "fernet" true "jwt" true
     "apiKey" true "s3" true). Secrets come from secretKeyRefs only. */}}
{{- define "lakehouse.airflow.env" -}}
{{- $root := .root -}}
- {name: AIRFLOW_HOME, value: /opt/airflow}
- {name: AIRFLOW_CONFIG, value: /opt/airflow/config/airflow.cfg}
- {name: PYTHONUNBUFFERED, value: "1"}
# What the DAGs' pods need from this release (common/pipeline-configmap.yaml,
# dags/lakehouse_dags/deployment.py).
- name: LAKEHOUSE_K8S_DEPLOYMENT
  valueFrom:
    configMapKeyRef: {name: {{ include "lakehouse.pipelineConfigMapName" $root | quote }}, key: deployment.json}
{{- if .db }}
# Metadata database: libpq (psycopg2) and asyncpg read the role from PGUSER/PGPASSWORD, so the
# SQLAlchemy URL in airflow.cfg carries no credential.
{{ include "lakehouse.credentials.env" (dict "root" $root "cred" "airflowDb" "keyField" "usernameKey" "env" "PGUSER") }}
{{ include "lakehouse.credentials.env" (dict "root" $root "cred" "airflowDb" "keyField" "passwordKey" "env" "PGPASSWORD") }}
{{- end }}
{{- if .fernet }}
{{ include "lakehouse.credentials.env" (dict "root" $root "cred" "airflow" "keyField" "fernetKeyKey" "env" "AIRFLOW__CORE__FERNET_KEY") }}
{{- end }}
{{- if .jwt }}
{{ include "lakehouse.credentials.env" (dict "root" $root "cred" "airflow" "keyField" "jwtSecretKey" "env" "AIRFLOW__API_AUTH__JWT_SECRET") }}
{{- end }}
{{- if .apiKey }}
{{ include "lakehouse.credentials.env" (dict "root" $root "cred" "airflow" "keyField" "apiSecretKeyKey" "env" "AIRFLOW__API__SECRET_KEY") }}
{{- end }}
{{- if and .s3 $root.Values.airflow.remoteLogging }}
# Remote task logs: boto3 takes the key pair from AWS_*; the connection holds only the endpoint
# and region, expanded by the kubelet from the settings ConfigMap (envFrom).
{{ include "lakehouse.s3ClientEnv" (dict "root" $root) }}
- name: AIRFLOW_CONN_LAKEHOUSE_S3
  value: '{"conn_type": "aws", "extra": {"endpoint_url": "$(LAKEHOUSE_S3_ENDPOINT)", "region_name": "$(AWS_REGION)"}}'
{{- end }}
{{- end -}}

{{- define "lakehouse.airflow.envFrom" -}}
- configMapRef:
    name: {{ include "lakehouse.configMapName" . }}
{{- end -}}

{{/* Volumes of an Airflow pod: (dict "root" $ "kubeApi" true "git" true). */}}
{{- define "lakehouse.airflow.volumes" -}}
- name: config
  configMap:
    name: {{ include "lakehouse.airflow.name" (dict "root" .root "component" "config") }}
- name: logs
  emptyDir:
    sizeLimit: 1Gi
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- if .kubeApi }}
# The service-account token is mounted explicitly (automountServiceAccountToken is false on
# every pod): short-lived, and only in the pods that call the Kubernetes API.
- name: kube-api-access
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3607
      - configMap:
          name: kube-root-ca.crt
          items:
            - {key: ca.crt, path: ca.crt}
      - downwardAPI:
          items:
            - path: namespace
              fieldRef: {fieldPath: metadata.namespace}
{{- end }}
{{- if .git }}
- name: git
  emptyDir:
    sizeLimit: 1Gi
{{- end }}
{{- end -}}

{{/* Mounts matching lakehouse.airflow.volumes: (dict "kubeApi" true "git" true). */}}
{{- define "lakehouse.airflow.volumeMounts" -}}
- {name: config, mountPath: /opt/airflow/config, readOnly: true}
- {name: logs, mountPath: /opt/airflow/logs}
- {name: tmp, mountPath: /tmp}
{{- if .kubeApi }}
- {name: kube-api-access, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}
{{- end }}
{{- if .git }}
- {name: git, mountPath: /opt/airflow/git, readOnly: true}
{{- end }}
{{- end -}}

{{/* Init container that waits until `airflow db migrate` has run (the migration Job). */}}
{{- define "lakehouse.airflow.waitForMigrations" -}}
{{- $a := .Values.airflow -}}
- name: wait-for-migrations
  image: {{ include "lakehouse.image" (dict "root" . "image" $a.image) }}
  imagePullPolicy: {{ $a.image.pullPolicy }}
  command: ["airflow", "db", "check-migrations", "--migration-wait-timeout", "1200"]
  env:
    {{- include "lakehouse.airflow.env" (dict "root" . "db" true) | nindent 4 }}
  envFrom:
    {{- include "lakehouse.airflow.envFrom" . | nindent 4 }}
  securityContext:
    {{- include "lakehouse.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml $a.initResources | nindent 4 }}
  volumeMounts:
    {{- include "lakehouse.airflow.volumeMounts" dict | nindent 4 }}
{{- end -}}

{{/* git-sync container: (dict "root" $ "oneTime" true) for worker pods (clone once, then the
     task runs), false for the dag-processor's sidecar (keeps the checkout current). */}}
{{- define "lakehouse.airflow.gitSync" -}}
{{- $g := .root.Values.airflow.gitSync -}}
- name: git-sync
  image: {{ include "lakehouse.image" (dict "root" .root "image" $g.image) }}
  imagePullPolicy: {{ $g.image.pullPolicy }}
  env:
    - {name: GITSYNC_REPO, value: {{ $g.repo | quote }}}
    - {name: GITSYNC_REF, value: {{ $g.ref | quote }}}
    - {name: GITSYNC_ROOT, value: /git}
    - {name: GITSYNC_LINK, value: repo}
    - {name: GITSYNC_DEPTH, value: "1"}
    - {name: GITSYNC_PERIOD, value: {{ $g.period | quote }}}
    - {name: GITSYNC_ONE_TIME, value: {{ .oneTime | quote }}}
    # The sidecar survives a failed fetch and retries; a one-time clone fails the pod.
    - {name: GITSYNC_MAX_FAILURES, value: {{ ternary "0" "-1" .oneTime | quote }}}
    - {name: HOME, value: /tmp}
  {{- with $g.credentialsSecret }}
  envFrom:
    - secretRef:
        name: {{ . }}
  {{- end }}
  securityContext:
    {{- include "lakehouse.containerSecurityContext" .root | nindent 4 }}
  resources:
    {{- toYaml $g.resources | nindent 4 }}
  volumeMounts:
    - {name: git, mountPath: /git}
    - {name: tmp, mountPath: /tmp}
{{- end -}}

{{/* Checksums that restart the Airflow pods when their configuration changes. */}}
{{- define "lakehouse.airflow.checksums" -}}
checksum/settings: {{ include "lakehouse.settingsChecksum" . }}
checksum/pipeline: {{ include "lakehouse.dataChecksum" (dict "root" . "template" "/common/pipeline-configmap.yaml") }}
checksum/airflow-config: {{ include "lakehouse.dataChecksum" (dict "root" . "template" "/airflow/configmap.yaml") }}
{{- end -}}
