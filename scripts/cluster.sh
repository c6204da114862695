#!/usr/bin/env bash
# The laptop cluster: every step behind `make up`, `make run`, `make port-forward` and friends
# (mk/cluster.mk calls one subcommand per target). Each step is idempotent and fails fast with a
# message that says what to do next.
#
#   cluster.sh preflight     Docker running with enough memory/CPUs; kind, kubectl, helm built
#   cluster.sh create        the kind cluster (kind-config.yaml, node image pinned by digest;
#                            where no registry serves it, the one scripts/node-image.sh builds)
#   cluster.sh images        docker build images/<name>/Dockerfile -> lakehouse/<name>:<version>
#   cluster.sh load          kind load docker-image of those images into the node
#   cluster.sh deploy        helm upgrade --install --wait, watched by the watchdog meanwhile
#   cluster.sh watch         final watchdog pass, then the UI commands
#   cluster.sh ingest        the ingest stage as a Job in the cluster (DAY=YYYY-MM-DD)
#   cluster.sh run           trigger lakehouse_end_to_end in Airflow and follow it to the end
#   cluster.sh status|logs|port-forward|down|clean
#   cluster.sh tools|env      build the tools only | print the settings a run would use
#   cluster.sh kubectl        build the pinned kubectl only (the watchdog's tests run it)
#   cluster.sh check-docker   only the Docker check every step starts with (scripts/node-image.sh)
#
# Versions come from versions.env; a variable already in the environment wins, which is how
# `make up KIND_VERSION=...` reaches this script (make exports command-line variables).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
load_versions KIND_VERSION KIND_NODE_IMAGE KUBERNETES_VERSION

CLUSTER_NAME="${CLUSTER_NAME:-lakehouse}"
NAMESPACE="${NAMESPACE:-lakehouse}"
RELEASE="${RELEASE:-lakehouse}"
# The images the chart and the DAGs run; jupyter (optional component) on request.
CLUSTER_IMAGES="${CLUSTER_IMAGES:-spark python mlflow airflow postgres seaweedfs spark-operator}"
# A kubeconfig of its own, so the user's ~/.kube/config is never edited.
STATE="${CLUSTER_STATE:-$ROOT/.cluster}"
KCFG="${CLUSTER_KUBECONFIG:-$STATE/kubeconfig}"
TOOLS_BIN="${TOOLS_BIN:-$ROOT/.tools/bin}"
KIND="$TOOLS_BIN/kind"
KUBECTL="$TOOLS_BIN/kubectl"
HELM="$TOOLS_BIN/helm"
PYTHON="${PYTHON:-python3}"
WATCH="$ROOT/scripts/cluster_watch.py"
CHART="$ROOT/charts/.build/lakehouse"
# PROFILE=laptop (default): values-kind.yaml, the chart's footprint budget (3 CPU, 6 GiB
# requested) plus the control plane. PROFILE=small: values-small.yaml on top, CPU requests cut to
# fit 2 cores (make e2e on a 2-core machine; `make footprint` prints both).
PROFILE="${PROFILE:-laptop}"
case "$PROFILE" in
  laptop) profile_values="" min_cpus=4 ;;
  small) profile_values="$ROOT/charts/lakehouse/values-small.yaml" min_cpus=2 ;;
  *) printf 'error: PROFILE must be laptop or small, got "%s"\n' "$PROFILE" >&2 && exit 2 ;;
esac
# One or more values files, separated by spaces, applied in order.
KIND_VALUES="${KIND_VALUES:-$ROOT/charts/lakehouse/values-kind.yaml${profile_values:+ $profile_values}}"
DAG_ID="${DAG_ID:-lakehouse_end_to_end}"
MIN_MEMORY_GIB="${MIN_MEMORY_GIB:-7}"
MIN_CPUS="${MIN_CPUS:-$min_cpus}"

say() { printf '==> %s\n' "$*"; }
die() {
  printf 'error: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '       %s\n' "$line" >&2; done
  exit 1
}

project_version() {  # the one reader of the project version (images/build_args.py)
  (cd "$ROOT" && "$PYTHON" -m images project-version)
}
IMAGE_TAG="${IMAGE_TAG:-$(project_version)}"

# ---------------------------------------------------------------------------------------------
# Docker: checked first by every step, so a machine without it fails in well under a second.

docker_state() {
  # Prints "absent", "down: <reason>" or "up <MemTotal bytes> <NCPU>".
  if ! command -v docker >/dev/null 2>&1; then
    echo absent
    return
  fi
  local out limit=()
  # A daemon behind a dead TCP address would hang; macOS has no `timeout` unless coreutils.
  command -v timeout >/dev/null 2>&1 && limit=(timeout 15)
  if out="$(${limit[@]+"${limit[@]}"} docker info --format '{{.MemTotal}} {{.NCPU}}' 2>&1)"; then
    echo "up $out"
  else
    echo "down: $(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n1)"
  fi
}

require_docker() {
  local state
  state="$(docker_state)"
  case "$state" in
    absent)
      die "Docker is required for the laptop cluster, and \`docker\` is not on PATH." \
        "Install Docker (Docker Desktop, or Docker Engine on Linux), start it, then run \`make up\`." \
        "Without Docker, \`make demo\` runs the same pipeline embedded and \`make test\` verifies it."
      ;;
    down:*)
      die "Docker is installed but its daemon does not answer (${state#down: })." \
        "Start Docker (Docker Desktop, or \`sudo systemctl start docker\`) and run the target again."
      ;;
  esac
  DOCKER_MEMORY_BYTES="$(awk '{print $2}' <<<"$state")"
  DOCKER_CPUS="$(awk '{print $3}' <<<"$state")"
}

check_resources() {
  # Docker Desktop reports a little less than the configured size: round to the nearest GiB.
  local gib=$(((DOCKER_MEMORY_BYTES + 512 * 1024 * 1024) / 1024 / 1024 / 1024))
  if ((gib < MIN_MEMORY_GIB)); then
    die "Docker has ${gib} GiB of memory; the lakehouse needs at least ${MIN_MEMORY_GIB} GiB (8 recommended)." \
      "Docker Desktop: Settings > Resources > Memory. Override the check with MIN_MEMORY_GIB=<n>."
  fi
  if ((DOCKER_CPUS < MIN_CPUS)); then
    die "Docker has ${DOCKER_CPUS} CPUs; profile $PROFILE needs ${MIN_CPUS} (its requests plus the control plane's ~1)." \
      "Docker Desktop: Settings > Resources > CPUs (${MIN_CPUS} or more); with 2 or 3 CPUs, \`make up PROFILE=small\`." \
      "Override the check with MIN_CPUS=<n>."
  fi
  say "Docker: ${gib} GiB, ${DOCKER_CPUS} CPUs"
}

# ---------------------------------------------------------------------------------------------
# Tools, pinned and built into .tools/bin with the Go toolchain (as helm is, by chart-tools.sh).

require_go() {
  command -v go >/dev/null 2>&1 && return
  die "the Go toolchain is not installed: cannot build $1 into $TOOLS_BIN." \
    "Install Go (1.24 or newer) and run the target again, or put $1 $2 at $TOOLS_BIN/$1."
}

kind_ok() { [[ -x "$KIND" ]] && [[ "$("$KIND" version 2>/dev/null)" == "kind v$KIND_VERSION "* ]]; }

ensure_kind() {
  kind_ok && return
  require_go kind "v$KIND_VERSION"
  say "building kind v$KIND_VERSION into $TOOLS_BIN"
  mkdir -p "$TOOLS_BIN"
  (cd /tmp && GOBIN="$TOOLS_BIN" GOFLAGS=-buildvcs=false go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kind@v$KIND_VERSION")
  kind_ok || die "the built kind does not report v$KIND_VERSION"
}

kubectl_ok() {
  [[ -x "$KUBECTL" ]] \
    && grep -q "\"gitVersion\": \"v$KUBERNETES_VERSION\"" <<<"$("$KUBECTL" version --client -o json 2>/dev/null)"
}

ensure_kubectl() {
  kubectl_ok && return
  require_go kubectl "v$KUBERNETES_VERSION"
  # kubectl's command lives in the published staging module k8s.io/kubectl (v0.N.P for Kubernetes
  # 1.N.P); k8s.io/kubernetes itself cannot be `go install`ed (replace directives). A two-line
  # main in a throwaway module builds it; the version is stamped as Kubernetes' build does.
  local staging="v0.${KUBERNETES_VERSION#1.}" src="$ROOT/.tools/src/kubectl"
  say "building kubectl v$KUBERNETES_VERSION (k8s.io/kubectl $staging) into $TOOLS_BIN (minutes, once)"
  rm -rf "$src" && mkdir -p "$src" "$TOOLS_BIN"
  cat >"$src/main.go" <<'EOF'
// kubectl of the pinned Kubernetes version, built by scripts/cluster.sh.
package main

import (
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
EOF
  local v="v$KUBERNETES_VERSION"
  (
    cd "$src"
    export GOFLAGS=-buildvcs=false
    go mod init lakehouse.local/kubectl >/dev/null 2>&1
    go get "k8s.io/kubectl@$staging" "k8s.io/client-go@$staging" "k8s.io/component-base@$staging" >/dev/null
    go mod tidy >/dev/null
    go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitVersion=$v \
      -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION") \
      -X k8s.io/client-go/pkg/version.gitMinor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION") \
      -X k8s.io/component-base/version.gitTreeState=clean" -o "$KUBECTL" .
  )
  kubectl_ok || die "the built kubectl does not report $v"
}

ensure_helm() { bash "$ROOT/charts/scripts/chart-tools.sh" helm >/dev/null; }

ensure_tools() {
  ensure_kind
  ensure_kubectl
  ensure_helm
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: the watchdog needs Python 3.11+."
  say "tools: $("$KIND" version | cut -d' ' -f1-2), kubectl v$KUBERNETES_VERSION, helm v$HELM_VERSION"
}

# ---------------------------------------------------------------------------------------------
# Cluster

cluster_exists() { grep -qx "$CLUSTER_NAME" <<<"$("$KIND" get clusters 2>/dev/null)"; }

require_cluster() {
  require_docker
  ensure_kind
  cluster_exists || die "no kind cluster \"$CLUSTER_NAME\": run \`make up\` first."
  [[ -s "$KCFG" ]] || "$KIND" export kubeconfig --name "$CLUSTER_NAME" --kubeconfig "$KCFG" >/dev/null
  ensure_kubectl
}

kc() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }
kcn() { kc --namespace "$NAMESPACE" "$@"; }
# The chart's object of one component, found by its labels: the chart alone names its objects
# (fullnameOverride and all). `component svc mlflow` -> service/lakehouse-mlflow, or nothing.
component() {
  kcn get "$1" -o name \
    -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/part-of=lakehouse,app.kubernetes.io/component=$2" \
    2>/dev/null | head -n 1
}

cmd_preflight() {
  require_docker
  check_resources
  ensure_tools
}

local_node_image() { bash "$ROOT/scripts/node-image.sh" tag; }

node_image() {
  # KIND_NODE_IMAGE when Docker has it or a registry serves it (kind would pull it the same way);
  # else the node image built from package registries (scripts/node-image.sh: a docker load of
  # its cache, or a build the first time), saying so.
  if docker image inspect "$KIND_NODE_IMAGE" >/dev/null 2>&1; then
    NODE_IMAGE="$KIND_NODE_IMAGE"
    return
  fi
  say "pulling $KIND_NODE_IMAGE"
  local out
  if out="$(docker pull --quiet "$KIND_NODE_IMAGE" 2>&1)"; then
    NODE_IMAGE="$KIND_NODE_IMAGE"
    return
  fi
  [[ "$KIND_NODE_IMAGE" != lakehouse/kind-node:* ]] \
    || die "$KIND_NODE_IMAGE is not in Docker: \`make node-image\` builds the one of this checkout."
  NODE_IMAGE="$(local_node_image)"
  say "no registry serves $KIND_NODE_IMAGE ($(tail -n1 <<<"$out" | cut -c1-120))"
  say "using $NODE_IMAGE, the node image built from package registries (make node-image)"
  bash "$ROOT/scripts/node-image.sh"
}

cmd_create() {
  require_docker
  ensure_kind
  mkdir -p "$STATE"
  if cluster_exists; then
    say "kind cluster \"$CLUSTER_NAME\" exists"
    local image
    image="$(docker inspect --format '{{.Config.Image}}' "$CLUSTER_NAME-control-plane" 2>/dev/null || true)"
    [[ -z "$image" || "$image" == "$KIND_NODE_IMAGE" || "$image" == "$(local_node_image)" ]] \
      || say "warning: its node runs $image, not $KIND_NODE_IMAGE: \`make down up\` to recreate it"
    "$KIND" export kubeconfig --name "$CLUSTER_NAME" --kubeconfig "$KCFG" >/dev/null
  else
    node_image
    "$KIND" create cluster --name "$CLUSTER_NAME" --image "$NODE_IMAGE" \
      --config "$ROOT/kind-config.yaml" --kubeconfig "$KCFG" --wait 180s
  fi
  say "kubeconfig: $KCFG (export KUBECONFIG=$KCFG to use your own kubectl)"
}

cmd_images() {
  require_docker
  # One builder for every image (images/build.py): the one base (a debootstrap one where no
  # registry answers), BuildKit, CA_BUNDLE as a build secret, Go binaries from the module proxy.
  # shellcheck disable=SC2086  # CLUSTER_IMAGES is a list of names
  (cd "$ROOT" && "$PYTHON" -m images build $CLUSTER_IMAGES)
}

cmd_load() {
  require_cluster
  local name image local_id node_id changed=()
  for name in $CLUSTER_IMAGES; do
    image="lakehouse/$name:$IMAGE_TAG"
    local_id="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null)" \
      || die "image $image is not built: run \`make images\` first."
    node_id="$(docker exec "$CLUSTER_NAME-control-plane" crictl inspecti -o go-template \
      --template '{{.status.id}}' "docker.io/$image" 2>/dev/null || true)"
    [[ "$node_id" == "$local_id" ]] && continue
    # kind skips an image whose ID the node already has, so a repeated load is cheap.
    "$KIND" load docker-image --name "$CLUSTER_NAME" "$image"
    [[ -z "$node_id" ]] || changed+=("$image")
  done
  # Same tag, new content: running pods keep the old image until restarted (deploy does it).
  mkdir -p "$STATE"
  printf '%s\n' ${changed[@]+"${changed[@]}"} >"$STATE/reloaded-images"
}

restart_reloaded() {
  # Deployments and StatefulSets whose pods run an image `make load` replaced under the same
  # tag: helm sees no change in them, so they are restarted here, and waited for.
  local file="$STATE/reloaded-images" line workload images
  [[ -s "$file" ]] || return 0
  while read -r workload images; do
    [[ -n "$workload" ]] || continue
    while read -r line; do
      [[ -n "$line" ]] || continue
      [[ " $images " == *" $line "* || " $images " == *" docker.io/$line "* ]] || continue
      say "restarting $workload: its image $line was rebuilt"
      kcn rollout restart "$workload" >/dev/null
      kcn rollout status "$workload" --timeout "${DEPLOY_TIMEOUT:-20m}" >/dev/null
      break
    done <"$file"
  done < <(kcn get deployments,statefulsets -o jsonpath='{range .items[*]}{.kind}/{.metadata.name} {.spec.template.spec.containers[*].image} {.spec.template.spec.initContainers[*].image}{"\n"}{end}')
  rm -f "$file"
}

watchdog() {
  "$PYTHON" "$WATCH" --kubectl "$KUBECTL" --kubeconfig "$KCFG" --namespace "$NAMESPACE" "$@"
}

cmd_deploy() {
  require_cluster
  ensure_helm
  bash "$ROOT/charts/scripts/chart-tools.sh" deps
  local file values=()
  for file in $KIND_VALUES; do
    [[ -f "$file" ]] || die "no $file: a values file of KIND_VALUES is missing."
    values+=(--values "$file")
  done
  say "helm upgrade --install $RELEASE (namespace $NAMESPACE, profile $PROFILE), watched for stuck pods"
  # helm --wait alone would sit out its whole timeout on a pod that can never start; the
  # watchdog runs beside it and stops the deploy at the first such pod, naming it.
  "$HELM" upgrade --install "$RELEASE" "$CHART" --kubeconfig "$KCFG" \
    --namespace "$NAMESPACE" --create-namespace "${values[@]}" \
    --wait --wait-for-jobs --timeout "${DEPLOY_TIMEOUT:-20m}" &
  local helm_pid=$! status=0
  while kill -0 "$helm_pid" 2>/dev/null; do
    if ! watchdog --once; then
      kill "$helm_pid" 2>/dev/null || true
      wait "$helm_pid" 2>/dev/null || true
      die "deploy stopped: see the pods named above (\`make status\`, \`make logs\`)."
    fi
    sleep 5
  done
  wait "$helm_pid" || status=$?
  ((status == 0)) || die "helm upgrade --install failed (exit $status): \`make status\` shows the pods."
  restart_reloaded
}

ui_hints() {
  cat <<EOF

The lakehouse is up. Next:
  make run            trigger $DAG_ID and follow it to the end
  make port-forward   Airflow http://127.0.0.1:${AIRFLOW_PORT:-8080}, MLflow http://127.0.0.1:${MLFLOW_PORT:-5000},
                      MinIO console http://127.0.0.1:${MINIO_CONSOLE_PORT:-9001}, Spark UI http://127.0.0.1:${SPARK_UI_PORT:-4040}
  make status | make logs | make down
  export KUBECONFIG=$KCFG   # for your own kubectl / helm
EOF
}

cmd_watch() {
  require_cluster
  watchdog --timeout "${WATCH_TIMEOUT:-600}"
  ui_hints
}

# ---------------------------------------------------------------------------------------------
# Pipeline

default_day() {
  # The interval a run triggered now processes: the day before the last 02:00 UTC.
  "$PYTHON" -c 'from datetime import UTC, datetime, timedelta
now = datetime.now(UTC) - timedelta(hours=2)
print((now - timedelta(days=1)).date().isoformat())'
}

cmd_ingest() {
  require_cluster
  local day="${DAY:-$(default_day)}" end job contract
  [[ "$day" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || die "DAY must be YYYY-MM-DD, got \"$day\"."
  end="$(next_day "$day")"
  job="$RELEASE-ingest-${day//-/}"
  # The release's pipeline contract: the names, keys and labels the DAG's stage pods get.
  contract="$(kcn get configmap -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/part-of=lakehouse,app.kubernetes.io/component=pipeline" \
    -o jsonpath='{.items[0].data.deployment\.json}')" || contract=""
  [[ -n "$contract" ]] || die "no pipeline ConfigMap of release $RELEASE in $NAMESPACE: \`make deploy\` first."
  say "ingest $day as Job $job"
  kcn delete job "$job" --ignore-not-found --wait >/dev/null
  "$ROOT/.venv/bin/python" "$ROOT/scripts/cluster_jobs.py" ingest --deployment - --name "$job" \
    --start "$day" --end "$end" <<<"$contract" | kcn apply -f -
  watchdog --job "$job" --timeout "${INGEST_TIMEOUT:-900}"
  kcn logs "job/$job" --tail=50
}

airflow() {
  local target="${AIRFLOW_EXEC:-$(component deploy airflow-scheduler)}"
  [[ -n "$target" ]] || die "no Airflow scheduler of release $RELEASE in $NAMESPACE (\`make status\`)"
  kcn exec "$target" -- airflow "$@"
}

next_day() {
  "$PYTHON" -c "import datetime,sys; print(datetime.date.fromisoformat(sys.argv[1]) + datetime.timedelta(days=1))" "$1"
}

active_run() { # <day> [<run id prefix>]: id of a queued/running run of DAY's interval
  # Scheduled and backfill runs have the interval's start as logical date.
  airflow dags list-runs "$DAG_ID" -o json 2>/dev/null | "$PYTHON" -c '
import json, sys
# Airflow logs warnings to stdout too: the JSON is the last line that is a list.
lists = [line for line in sys.stdin.read().splitlines() if line.startswith(("[{", "[]"))]
for r in json.loads(lists[-1]) if lists else []:
    if (r["run_id"].startswith(sys.argv[2]) and r["state"] in ("queued", "running")
            and r["logical_date"].startswith(sys.argv[1] + "T02:00:00")):
        print(r["run_id"])
        break' "$1" "${2:-}" || true
}

run_state() { # <run id>: queued|running|success|failed, or "" if there is no such run
  airflow dags state "$DAG_ID" "$1" 2>/dev/null | grep -v '^[[:space:]]*$' | tail -n1 || true
}

cmd_run() {
  require_cluster
  local run_id state="" last="" tasks deadline day logical
  day="${DAY:-$(default_day)}"
  [[ "$day" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || die "DAY must be YYYY-MM-DD, got \"$day\"."
  # Right after a deploy the dag-processor may not have parsed the DAG yet.
  deadline=$((SECONDS + 180))
  until airflow dags unpause "$DAG_ID" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "Airflow does not know $DAG_ID (or cannot be reached)." \
      "\`make status\` shows the Airflow pods; \`make logs COMPONENT=airflow-dag-processor\` why."
    sleep 5
  done
  # Unpausing makes the scheduler start the latest interval itself (catchup is off): when that
  # is DAY's, follow the scheduler's run instead of processing the interval twice.
  run_id=""
  if [[ -z "${RUN_ID:-}" && "$day" == "$(default_day)" ]]; then
    deadline=$((SECONDS + 60))
    while [[ -z "$run_id" ]] && ((SECONDS < deadline)); do
      run_id="$(active_run "$day" scheduled__)"
      [[ -n "$run_id" ]] || sleep 5
    done
  fi
  if [[ -n "$run_id" ]]; then
    say "following the scheduler's run $run_id of the interval $day 02:00 UTC + 1 day (Ctrl-C stops following, not the run)"
  elif [[ "$day" == "$(default_day)" ]]; then
    # A manual run: Airflow infers its data interval from when it is triggered (the latest
    # complete interval, DAY's), and needs a logical date for that. One second past DAY's end:
    # the end instant itself is the logical date of the next scheduled run (unique per DAG).
    logical="$(next_day "$day")T02:00:01+00:00"
    run_id="${RUN_ID:-make__${day}__$(date -u +%Y%m%dT%H%M%SZ)}"
    airflow dags trigger "$DAG_ID" --run-id "$run_id" --logical-date "$logical" >/dev/null \
      || die "Airflow did not trigger $DAG_ID for $day: the error is above." \
        "One manual run per interval: if it exists, clear that run (Airflow UI: the run > Clear) to run it again."
    say "triggered $DAG_ID run $run_id for the interval $day 02:00 UTC + 1 day; following it (Ctrl-C stops following, not the run)"
  else
    # An earlier interval: a backfill of its one logical date (the interval's start), whose
    # data interval the timetable gives; a manual trigger would get the latest interval instead.
    logical="${day}T02:00:00+00:00"
    airflow backfill create --dag-id "$DAG_ID" --from-date "$logical" --to-date "$logical" \
      --reprocess-behavior completed >/dev/null \
      || die "Airflow did not create a backfill of $DAG_ID for $day: the error is above."
    deadline=$((SECONDS + 120))
    until run_id="$(active_run "$day")" && [[ -n "$run_id" ]]; do
      ((SECONDS < deadline)) || die "the backfill of $day started no run within 120 s: \`make logs COMPONENT=airflow-scheduler\`."
      sleep 5
    done
    say "backfill run $run_id of the interval $day 02:00 UTC + 1 day; following it (Ctrl-C stops following, not the run)"
  fi
  [[ -z "${RUN_ID_FILE:-}" ]] || printf '%s\n' "$run_id" >"$RUN_ID_FILE"
  deadline=$((SECONDS + ${RUN_TIMEOUT:-5400}))
  while :; do
    # Each `airflow` call is a Python start in the scheduler pod: poll gently on a small machine.
    state="$(run_state "$run_id")"
    # Only the table: the CLI also logs its start-up (plugins, warnings) to stdout.
    tasks="$(airflow tasks states-for-dag-run "$DAG_ID" "$run_id" -o plain 2>/dev/null \
      | grep -E "^(dag_id|$DAG_ID) " || true)"
    if [[ "$tasks" != "$last" ]]; then
      printf '\n[%s] run %s\n%s\n' "$(date -u +%H:%M:%S)" "${state:-queued}" "$tasks"
      last="$tasks"
    fi
    case "$state" in
      success) say "run $run_id succeeded" && return 0 ;;
      failed) die "run $run_id failed: the failed tasks are listed above; \`make logs\` shows pod logs." ;;
    esac
    # A stage pod that can never start fails the run here rather than after every retry.
    watchdog --once || die "run $run_id cannot progress: see the pods named above."
    ((SECONDS < deadline)) || die "run $run_id still ${state:-queued} after ${RUN_TIMEOUT:-5400}s."
    sleep "${POLL_SECONDS:-20}"
  done
}

# ---------------------------------------------------------------------------------------------
# Day to day

cmd_status() {
  require_cluster
  kc get nodes -o wide
  "$HELM" status "$RELEASE" --kubeconfig "$KCFG" --namespace "$NAMESPACE" 2>/dev/null | head -n 8 \
    || say "no helm release $RELEASE yet: \`make deploy\`"
  kcn get pods,services,pvc,jobs -o wide
  kcn get sparkapplications 2>/dev/null || true
}

cmd_logs() {
  require_cluster
  local pod selector="${COMPONENT:+app.kubernetes.io/component=$COMPONENT}"
  for pod in $(kcn get pods ${selector:+-l "$selector"} -o name); do
    printf '\n===== %s\n' "$pod"
    kcn logs "$pod" --all-containers --prefix --tail="${TAIL:-100}" || true
  done
}

cmd_port_forward() {
  require_cluster
  local pids=() lines=() svc driver
  forward() { # <what> <target> <local port> <remote port> <url note>
    kcn port-forward --address 127.0.0.1 "$2" "$3:$4" >"$STATE/port-forward-$3.log" 2>&1 &
    pids+=($!)
    lines+=("$(printf '  %-14s http://127.0.0.1:%s   %s' "$1" "$3" "$5")")
  }
  mkdir -p "$STATE"
  svc="$(component svc airflow-api-server)"
  [[ -z "$svc" ]] || forward Airflow "$svc" "${AIRFLOW_PORT:-8080}" 8080 "user admin, password: see below"
  svc="$(component svc mlflow)"
  [[ -z "$svc" ]] || forward MLflow "$svc" "${MLFLOW_PORT:-5000}" 5000 "no login"
  # The object store's browser: SeaweedFS's filer UI (8889: JupyterLab's forward takes 8888),
  # or MinIO's console when objectStore.server=minio.
  svc="$(component svc seaweedfs)"
  [[ -z "$svc" ]] || forward "SeaweedFS filer" "$svc" "${FILER_PORT:-8889}" 8888 "browse the buckets (no login; loopback only)"
  svc="$(component svc minio)"
  [[ -z "$svc" ]] || forward "MinIO console" "$svc" "${MINIO_CONSOLE_PORT:-9001}" 9001 "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
  driver="$(kcn get pods -l spark-role=driver --field-selector=status.phase=Running \
    --sort-by=.metadata.creationTimestamp -o name 2>/dev/null | tail -n1 || true)"
  if [[ -n "$driver" ]]; then
    forward "Spark UI" "$driver" "${SPARK_UI_PORT:-4040}" 4040 "${driver#pod/}"
  else
    lines+=("  Spark UI       no Spark driver is running now: \`make run\`, then \`make port-forward\` again")
  fi
  ((${#pids[@]})) || die "nothing to forward: is the release deployed? (\`make status\`)"
  # Stop our own port-forwards (by pid) however this script ends.
  trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
  trap 'exit 0' INT TERM
  printf '\nUIs on this machine only (Ctrl-C stops the forwards):\n'
  printf '%s\n' "${lines[@]}"
  credential_hints
  wait
}

credential_hints() {
  # Names of keys only; the values stay in the cluster until the user asks for one.
  local secret keys
  printf '\nGenerated credentials (print one with the command shown):\n'
  for secret in $(kcn get secrets -o name 2>/dev/null | grep -v 'sh.helm.release' || true); do
    # shellcheck disable=SC2016 # a Go template, not a shell expansion
    keys="$(kcn get "$secret" -o go-template='{{range $k, $v := .data}}{{$k}} {{end}}')"
    for key in $keys; do
      case "$key" in
        *PASSWORD* | *password* | AWS_ACCESS_KEY_ID | AWS_SECRET_ACCESS_KEY)
          printf "  kubectl --kubeconfig %s -n %s get %s -o jsonpath='{.data.%s}' | base64 -d; echo\n" \
            "$KCFG" "$NAMESPACE" "$secret" "$key"
          ;;
      esac
    done
  done
}

cmd_down() {
  require_docker
  ensure_kind
  if cluster_exists; then
    "$KIND" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KCFG"
  else
    say "no kind cluster \"$CLUSTER_NAME\""
  fi
  remove_kind_network
  rm -f "$KCFG"
}

remove_kind_network() {
  # kind creates the Docker network "kind" for its nodes and never removes it; drop it once no
  # container (another kind cluster, say) is attached, so `make down` leaves nothing behind.
  docker network inspect kind >/dev/null 2>&1 || return 0
  local attached
  attached="$(docker network inspect kind --format '{{len .Containers}}')"
  if [[ "$attached" == 0 ]]; then
    docker network rm kind >/dev/null && say "removed the Docker network kind"
  else
    say "Docker network kind kept: $attached other container(s) use it"
  fi
}

cmd_clean() {
  # Part of `make clean`, which must work on machines without Docker too.
  local state
  state="$(docker_state)"
  if [[ "$state" == up* ]] && [[ -n "$(docker ps -aq --filter "label=io.x-k8s.kind.cluster=$CLUSTER_NAME")" ]]; then
    ensure_kind
    if [[ -x "$HELM" ]] && [[ -s "$KCFG" ]]; then
      "$HELM" uninstall "$RELEASE" --kubeconfig "$KCFG" --namespace "$NAMESPACE" --wait 2>/dev/null || true
      kc delete pvc --all --namespace "$NAMESPACE" --wait=false 2>/dev/null || true
    fi
    "$KIND" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KCFG"
    remove_kind_network
  elif [[ "$state" == down:* ]]; then
    say "warning: Docker does not answer; a kind cluster \"$CLUSTER_NAME\", if any, is left (\`make down\` once Docker runs)"
  else
    say "no kind cluster \"$CLUSTER_NAME\" to delete"
  fi
  rm -rf "$STATE"
}

cmd_env() {
  # What a run would use, overrides included (needs no Docker).
  local key
  for key in KIND_VERSION KIND_NODE_IMAGE KUBERNETES_VERSION HELM_VERSION CLUSTER_NAME NAMESPACE \
    RELEASE IMAGE_TAG CLUSTER_IMAGES KCFG PROFILE KIND_VALUES; do
    printf '%s=%s\n' "$key" "${!key}"
  done
}

# Sourced (scripts/gitops.sh): the functions above, no command.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

case "${1:-}" in
  preflight) cmd_preflight ;;
  create) cmd_create ;;
  images) cmd_images ;;
  load) cmd_load ;;
  deploy) cmd_deploy ;;
  watch) cmd_watch ;;
  ingest) cmd_ingest ;;
  run) cmd_run ;;
  status) cmd_status ;;
  logs) cmd_logs ;;
  port-forward) cmd_port_forward ;;
  down) cmd_down ;;
  clean) cmd_clean ;;
  tools) ensure_tools ;;
  kubectl) ensure_kubectl ;;
  env) cmd_env ;;
  check-docker) require_docker ;;
  *)
    echo "usage: $0 preflight|create|images|load|deploy|watch|ingest|run|status|logs|port-forward|down|clean|tools|kubectl|env" >&2
    exit 2
    ;;
esac
