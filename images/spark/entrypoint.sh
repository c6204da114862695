#!/bin/bash
# The spark image's entrypoint (run under tini): the Spark-on-Kubernetes container contract that
# spark-submit's Kubernetes backend, and so the Spark Operator, relies on (images/README.md).
#
#   driver ARGS...     spark-submit in client mode inside the driver pod, bound to
#                      SPARK_DRIVER_BIND_ADDRESS (the pod IP), which executors are told too
#   executor           the executor JVM, configured by the SPARK_* environment the driver sets
#   anything else      run as given (the operator controller's spark-submit, a shell, python)
set -euo pipefail

# A uid without a passwd entry (an arbitrary runAsUser) has no home for the JVM: user.home
# would be "?", and spark-submit's Ivy path with it.
if ! whoami >/dev/null 2>&1; then
  export SPARK_SUBMIT_OPTS="${SPARK_SUBMIT_OPTS:-} -Duser.home=${HOME:-/tmp}"
fi

require() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || { echo "entrypoint: $name is not set (the $mode contract)" >&2; exit 64; }
  done
}

# SPARK_JAVA_OPT_<n>: the executor's JVM options, one per variable, in the order of n.
java_options() {
  local name
  while read -r name; do
    executor_java_opts+=("${!name}")
  done < <(compgen -e | grep -E '^SPARK_JAVA_OPT_[0-9]+$' | sort -t_ -k4 -n)
}

classpath() {
  local cp="${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}$SPARK_HOME/jars/*"
  cp+="${SPARK_EXTRA_CLASSPATH:+:$SPARK_EXTRA_CLASSPATH}"
  cp="${HADOOP_CONF_DIR:+$HADOOP_CONF_DIR:}$cp"
  cp="${SPARK_CONF_DIR:+$SPARK_CONF_DIR:}$cp"
  printf '%s' "$cp"
}

# The image's class archive (AppCDS, see the Dockerfile), mapped into the driver JVM. It holds
# the classpath it was made with, whose conf directory is an empty one of the image: the pod's
# /opt/spark/conf holds only spark.properties, which spark-submit is given by path
# (--properties-file), so nothing is lost by leaving it off the classpath. On an archive that
# does not match, the JVM warns once ("Unable to use shared archive") and loads every class from
# its jar, as without one.
class_archive() {
  if [[ -r "${LAKEHOUSE_CLASS_ARCHIVE:-}" && -d "${LAKEHOUSE_CLASS_ARCHIVE_CONF_DIR:-}" ]]; then
    export SPARK_CONF_DIR="$LAKEHOUSE_CLASS_ARCHIVE_CONF_DIR"
    export SPARK_SUBMIT_OPTS="${SPARK_SUBMIT_OPTS:-} -XX:SharedArchiveFile=$LAKEHOUSE_CLASS_ARCHIVE"
  fi
}

mode="${1:-}"
case "$mode" in
  driver)
    shift
    require SPARK_DRIVER_BIND_ADDRESS
    class_archive
    exec "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    require SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_EXECUTOR_MEMORY \
      SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP
    executor_java_opts=()
    java_options
    exec java "${executor_java_opts[@]}" \
      -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
      -cp "$(classpath)" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" \
      --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" \
      --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-$(hostname)}"
    ;;
  "")
    echo "usage: driver ARGS... | executor | COMMAND [ARGS...]" >&2
    exit 64
    ;;
  *)
    exec "$@"
    ;;
esac
