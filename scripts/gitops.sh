#!/usr/bin/env bash
# The lakehouse deployed by GitOps on the kind cluster: Flux's source-controller and
# helm-controller (images/flux), a git server in the cluster (images/git-server) holding this
# checkout, and the GitRepository + HelmRelease of deploy/flux pointing at it. One subcommand
# per make target (mk/gitops.mk); deploy/README.md describes the same steps by hand.
#
#   up       images + CRDs + controllers + git server + the guide's Secret + push + Flux objects,
#            then wait until the HelmRelease is Ready at the pushed commit
#   push     push HEAD of this checkout (plus the vendored chart dependency) and wait for it
#   status   what Flux reports about the source, the chart and the release
#
# Flux deploys commits, not the working tree: uncommitted changes are not pushed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"

GITOPS_PY="${GITOPS_PYTHON:-$ROOT/.venv/bin/python} $ROOT/scripts/gitops.py"
GITOPS_IMAGES="flux git-server"
GIT_NAMESPACE=git-server
GIT_REPOSITORY=lakehouse
GIT_BRANCH="${GIT_BRANCH:-main}"
GIT_URL="http://git-server.$GIT_NAMESPACE.svc.cluster.local/git/$GIT_REPOSITORY.git"
# Flux's Secret for the git account (username/password keys, as GitRepository.spec.secretRef reads).
GIT_SECRET=lakehouse-git
# How often source-controller polls the git server: a pushed commit is live within it.
GITOPS_INTERVAL="${GITOPS_INTERVAL:-1m}"
GITOPS_TIMEOUT="${GITOPS_TIMEOUT:-1800}"

gitops_py() {
  # shellcheck disable=SC2086  # interpreter and script path
  $GITOPS_PY "$@"
}

module_dir() {
  (cd /tmp && go mod download -json "$1") | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])' \
    || die "go mod download $1 failed: the Flux CRDs come from its module."
}

install_flux() {
  local module
  say "Flux CRDs from the Go modules (source-controller v$FLUX_SOURCE_CONTROLLER_VERSION, helm-controller v$FLUX_HELM_CONTROLLER_VERSION)"
  require_go
  for module in "$FLUX_SOURCE_CONTROLLER_MODULE@v$FLUX_SOURCE_CONTROLLER_VERSION" \
    "$FLUX_HELM_CONTROLLER_MODULE@v$FLUX_HELM_CONTROLLER_VERSION"; do
    kc apply --server-side --force-conflicts -f "$(module_dir "$module")/config/crd/bases" >/dev/null
  done
  kc wait --for condition=Established --timeout 60s crd/gitrepositories.source.toolkit.fluxcd.io \
    crd/helmcharts.source.toolkit.fluxcd.io crd/helmreleases.helm.toolkit.fluxcd.io >/dev/null
  say "Flux controllers (deploy/flux/system)"
  kc apply -k "$ROOT/deploy/flux/system" >/dev/null
  kc --namespace flux-system rollout status deployment/source-controller deployment/helm-controller \
    --timeout 5m
}

random_secret() { "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))'; }

install_git_server() {
  local password
  # The account is made once and kept: the git server and Flux's source Secret share it.
  kc create namespace "$GIT_NAMESPACE" --dry-run=client -o yaml | kc apply -f - >/dev/null
  if ! kc --namespace "$GIT_NAMESPACE" get secret git-server-account >/dev/null 2>&1; then
    say "git account: a generated password in Secret $GIT_NAMESPACE/git-server-account"
    password="$(random_secret)"
    kc --namespace "$GIT_NAMESPACE" create secret generic git-server-account \
      --from-literal=GIT_USER=flux --from-literal=GIT_PASSWORD="$password" >/dev/null
    kc --namespace flux-system create secret generic "$GIT_SECRET" \
      --from-literal=username=flux --from-literal=password="$password" \
      --dry-run=client -o yaml | kc apply -f - >/dev/null
  fi
  say "git server (deploy/flux/git-server): $GIT_URL"
  kc apply -k "$ROOT/deploy/flux/git-server" >/dev/null
  kc --namespace "$GIT_NAMESPACE" rollout status deployment/git-server --timeout 5m
}

create_credentials() {
  # Exactly the guide's command (deploy/README.md, "Create the Secret first"), with this
  # cluster's kubectl; on a fresh cluster only, since the volumes keep the first passwords.
  if kc get namespace "$NAMESPACE" >/dev/null 2>&1; then
    kcn get secret lakehouse-credentials >/dev/null 2>&1 || die \
      "namespace $NAMESPACE exists without the Secret lakehouse-credentials." \
      "Create it as deploy/README.md says, or \`make down\` and start again."
    return
  fi
  say "credentials: the command of deploy/README.md (section 1) creates namespace $NAMESPACE and Secret lakehouse-credentials"
  command -v openssl >/dev/null || die "openssl is needed by the guide's command (Debian: apt-get install openssl)."
  kubectl() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }
  export -f kubectl
  export KUBECTL KCFG
  bash -euo pipefail -c "$(gitops_py secret-command)" >/dev/null
  unset -f kubectl
}

git_auth_env() {
  # The account reaches git by environment, never by argv or a URL (process lists, logs).
  local user password
  user="$(kc --namespace "$GIT_NAMESPACE" get secret git-server-account -o jsonpath='{.data.GIT_USER}' | base64 -d)"
  password="$(kc --namespace "$GIT_NAMESPACE" get secret git-server-account -o jsonpath='{.data.GIT_PASSWORD}' | base64 -d)"
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader
  GIT_CONFIG_VALUE_0="Authorization: Basic $(printf '%s:%s' "$user" "$password" | base64 -w0)"
  export GIT_CONFIG_VALUE_0
}

open_git_port() {
  # A port-forward to the git server on a free local port; sets GIT_LOCAL_URL and GIT_PF_PID.
  local log="$STATE/port-forward-git.log" port="" tries=0
  mkdir -p "$STATE"
  kc --namespace "$GIT_NAMESPACE" port-forward --address 127.0.0.1 svc/git-server :80 >"$log" 2>&1 &
  GIT_PF_PID=$!
  while [[ -z "$port" ]] && ((tries++ < 100)); do
    sleep 0.1
    port="$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "$log" | head -n1)"
    kill -0 "$GIT_PF_PID" 2>/dev/null || die "port-forward to the git server failed: $(cat "$log")"
  done
  [[ -n "$port" ]] || die "port-forward to the git server gave no port within 10 s: $(cat "$log")"
  GIT_LOCAL_URL="http://127.0.0.1:$port/git/$GIT_REPOSITORY.git"
}

vendored_commit() {
  # HEAD of this checkout plus one commit holding the chart's dependency (the spark-operator
  # chart of charts/.build, from its Go module): source-controller would fetch a missing one
  # from the chart repository Chart.yaml names, which this cluster cannot reach. The commit
  # reuses HEAD's dates, so the same HEAD always gives the same commit. Prints its sha.
  local work="$1" head
  head="$(git -C "$ROOT" rev-parse HEAD)"
  git -C "$ROOT" diff --quiet HEAD -- charts deploy \
    || say "note: uncommitted changes under charts/ or deploy/ are not pushed (Flux deploys commits)" >&2
  bash "$ROOT/charts/scripts/chart-tools.sh" deps >/dev/null
  git clone --quiet --no-checkout "$ROOT" "$work"
  git -C "$work" checkout --quiet -B "$GIT_BRANCH" "$head"
  cp -R "$CHART/charts" "$work/charts/lakehouse/charts"
  git -C "$work" add --force charts/lakehouse/charts
  GIT_AUTHOR_DATE="$(git -C "$ROOT" log -1 --format=%aI)" GIT_COMMITTER_DATE="$(git -C "$ROOT" log -1 --format=%cI)" \
    git -C "$work" -c user.name="lakehouse gitops" -c user.email=gitops@lakehouse.invalid commit --quiet \
    -m "Vendor the chart dependency spark-operator $SPARK_OPERATOR_CHART_VERSION" \
    -m "No chart repository is reachable from the cluster; source-controller uses charts/ as it is."
  git -C "$work" rev-parse HEAD
}

cmd_push() {
  require_cluster
  local work sha
  work="$(mktemp -d)"
  sha="$(vendored_commit "$work/repo")"
  git_auth_env
  open_git_port
  # Expanded now: the trap runs after this function's locals are gone.
  # shellcheck disable=SC2064
  trap "kill $GIT_PF_PID 2>/dev/null || true; rm -rf '$work'" EXIT
  say "pushing $(git -C "$ROOT" rev-parse --short HEAD) (+ vendored dependency: ${sha:0:12}) to $GIT_BRANCH of $GIT_URL"
  # Forced: the branch on the git server follows this checkout, its vendoring commit included.
  git -C "$work/repo" push --quiet --force "$GIT_LOCAL_URL" "HEAD:refs/heads/$GIT_BRANCH"
  kill "$GIT_PF_PID" 2>/dev/null || true
  apply_flux_objects
  say "waiting for Flux to deploy ${sha:0:12} (polls every $GITOPS_INTERVAL; timeout ${GITOPS_TIMEOUT}s)"
  kc --namespace flux-system annotate --overwrite gitrepository/lakehouse \
    "reconcile.fluxcd.io/requestedAt=$(date +%s)" >/dev/null
  gitops_py wait --kubectl "$KUBECTL" --kubeconfig "$KCFG" --revision "$sha" \
    --timeout "$GITOPS_TIMEOUT" --namespace "$NAMESPACE" \
    || die "the GitOps deploy did not become Ready: \`make gitops-status\`, \`make status\`."
  printf '%s\n' "$sha" >"$STATE/gitops-revision"
}

apply_flux_objects() {
  local file values=()
  for file in $KIND_VALUES; do values+=("$file"); done
  gitops_py objects --url "$GIT_URL" --secret "$GIT_SECRET" --interval "$GITOPS_INTERVAL" \
    --branch "$GIT_BRANCH" --values "${values[@]}" | kc apply -f - >/dev/null
}

cmd_up() {
  require_cluster
  # shellcheck disable=SC2034  # read by cmd_images and cmd_load
  local CLUSTER_IMAGES="$GITOPS_IMAGES"
  cmd_images
  cmd_load
  install_flux
  install_git_server
  create_credentials
  cmd_push
  say "the lakehouse is deployed by Flux from $GIT_URL ($GIT_BRANCH). Next: make run, make gitops-status"
}

cmd_gitops_status() {
  require_cluster
  gitops_py status --kubectl "$KUBECTL" --kubeconfig "$KCFG"
}

case "${1:-}" in
  up) cmd_up ;;
  push) cmd_push ;;
  status) cmd_gitops_status ;;
  *)
    echo "usage: $0 up|push|status" >&2
    exit 2
    ;;
esac
