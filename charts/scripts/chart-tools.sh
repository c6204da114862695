#!/usr/bin/env bash
# Chart tooling from the registries only, idempotent. Used by mk/charts.mk and tests/manifests.
#
#   chart-tools.sh helm   build the pinned helm into .tools/bin (go install; ~5 min the first time)
#   chart-tools.sh helm-docs  build the pinned helm-docs into .tools/bin (go install; ~30 s)
#   chart-tools.sh docs   regenerate charts/lakehouse/README.md from README.md.gotmpl + values.yaml
#   chart-tools.sh docs-check  print the README helm-docs would generate, without writing it
#   chart-tools.sh deps   assemble charts/.build/lakehouse: the umbrella chart plus the pinned
#                         upstream spark-operator chart copied from its Go module (module cache)
#   chart-tools.sh checkov  install the pinned checkov into its own environment .tools/checkov
#                         (uv from .tools/bin; its pins conflict with uv.lock, so not in .venv)
#   chart-tools.sh env    print the resolved versions and paths
#
# Versions come from versions.env, the project's one version matrix (scripts/versions.sh:
# a variable already in the environment wins).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
load_versions HELM_VERSION SPARK_OPERATOR_MODULE SPARK_OPERATOR_CHART_VERSION KUBERNETES_VERSION \
  HELM_DOCS_MODULE HELM_DOCS_VERSION

TOOLS_BIN="${TOOLS_BIN:-$ROOT/.tools/bin}"
HELM="$TOOLS_BIN/helm"
BUILD="$ROOT/charts/.build"

helm_ok() {
  [[ -x "$HELM" ]] && [[ "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" == "v$HELM_VERSION" ]]
}

cmd_helm() {
  if helm_ok; then echo "helm v$HELM_VERSION: $HELM"; return; fi
  command -v go >/dev/null || { echo "go toolchain not found: cannot build helm" >&2; exit 3; }
  # The Kubernetes version helm assumes for `template`/`lint` (Capabilities.KubeVersion) is set
  # at link time as the upstream Makefile does (client-go v0.N -> 1.N); tests also pass
  # --kube-version explicitly.
  local k8s_minor
  k8s_minor="$(cd /tmp && go mod download -json "helm.sh/helm/v3@v$HELM_VERSION" \
    | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' | xargs grep -m1 'k8s.io/client-go ' | sed 's/.* v0\.\([0-9]*\)\..*/\1/')"
  local x="helm.sh/helm/v3"
  mkdir -p "$TOOLS_BIN"
  echo "building helm v$HELM_VERSION (Kubernetes 1.$k8s_minor capabilities) into $TOOLS_BIN"
  (cd /tmp && GOBIN="$TOOLS_BIN" GOFLAGS=-buildvcs=false go install -trimpath -ldflags "-s -w \
    -X $x/internal/version.version=v$HELM_VERSION \
    -X $x/pkg/lint/rules.k8sVersionMajor=1 -X $x/pkg/lint/rules.k8sVersionMinor=$k8s_minor \
    -X $x/pkg/chartutil.k8sVersionMajor=1 -X $x/pkg/chartutil.k8sVersionMinor=$k8s_minor" \
    "$x/cmd/helm@v$HELM_VERSION")
  helm_ok || { echo "built helm does not report v$HELM_VERSION" >&2; exit 1; }
  "$HELM" version
}

HELM_DOCS="$TOOLS_BIN/helm-docs"

helm_docs_ok() {
  [[ -x "$HELM_DOCS" ]] && "$HELM_DOCS" --version 2>/dev/null | grep -q "version $HELM_DOCS_VERSION\b"
}

cmd_helm_docs() {
  if helm_docs_ok; then echo "helm-docs $HELM_DOCS_VERSION: $HELM_DOCS"; return; fi
  command -v go >/dev/null || { echo "go toolchain not found: cannot build helm-docs" >&2; exit 3; }
  mkdir -p "$TOOLS_BIN"
  echo "building helm-docs $HELM_DOCS_VERSION into $TOOLS_BIN"
  (cd /tmp && GOBIN="$TOOLS_BIN" GOFLAGS=-buildvcs=false go install -trimpath \
    -ldflags "-s -w -X main.version=$HELM_DOCS_VERSION" \
    "$HELM_DOCS_MODULE/cmd/helm-docs@v$HELM_DOCS_VERSION")
  helm_docs_ok || { echo "built helm-docs does not report $HELM_DOCS_VERSION" >&2; exit 1; }
}

# The README is charts/lakehouse/README.md.gotmpl with the values table filled in, keys in
# values.yaml's order.
helm_docs() {
  cmd_helm_docs >/dev/null
  "$HELM_DOCS" --chart-search-root "$ROOT/charts/lakehouse" --sort-values-order file \
    --log-level warning "$@"
}

cmd_docs() { helm_docs; }
cmd_docs_check() { helm_docs --dry-run; }

CHECKOV_ENV="${CHECKOV_ENV:-$ROOT/.tools/checkov}"
CHECKOV="$CHECKOV_ENV/bin/checkov"

checkov_ok() {
  # The installed distribution's version: what `checkov --version` prints, without its slow import.
  [[ -x "$CHECKOV" ]] && [[ "$("$CHECKOV_ENV/bin/python" -c \
    'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null)" == "$CHECKOV_VERSION" ]]
}

cmd_checkov() {
  : "${CHECKOV_VERSION:?CHECKOV_VERSION missing from versions.env}"
  if checkov_ok; then echo "checkov $CHECKOV_VERSION: $CHECKOV"; return; fi
  local uv="${UV:-$ROOT/.tools/bin/uv}"
  [[ -x "$uv" ]] || { echo "uv not found at $uv: run 'make venv' first" >&2; exit 3; }
  echo "installing checkov $CHECKOV_VERSION into $CHECKOV_ENV"
  rm -rf "$CHECKOV_ENV"
  "$uv" venv --quiet --python "${PYTHON:-python3}" "$CHECKOV_ENV"
  "$uv" pip install --quiet --python "$CHECKOV_ENV/bin/python" "checkov==$CHECKOV_VERSION"
  checkov_ok || { echo "installed checkov does not report $CHECKOV_VERSION" >&2; exit 1; }
}

spark_operator_dir() {
  (cd /tmp && go mod download -json "$SPARK_OPERATOR_MODULE@v$SPARK_OPERATOR_CHART_VERSION") \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

cmd_deps() {
  command -v go >/dev/null || { echo "go toolchain not found: cannot fetch the spark-operator chart" >&2; exit 3; }
  local mod src out
  mod="$(spark_operator_dir)"
  src="$mod/charts/spark-operator-chart"
  [[ -f "$src/Chart.yaml" ]] || { echo "no chart in $src" >&2; exit 1; }
  grep -q "^version: $SPARK_OPERATOR_CHART_VERSION\$" "$src/Chart.yaml" \
    || { echo "$src is not chart version $SPARK_OPERATOR_CHART_VERSION" >&2; exit 1; }
  out="$BUILD/lakehouse"
  rm -rf "$out.tmp"
  mkdir -p "$BUILD"
  cp -R "$ROOT/charts/lakehouse" "$out.tmp"
  rm -rf "$out.tmp/charts"
  mkdir -p "$out.tmp/charts"
  cp -R "$src" "$out.tmp/charts/spark-operator"
  chmod -R u+w "$out.tmp"   # the module cache is read-only
  rm -rf "$out"
  mv "$out.tmp" "$out"
  echo "chart with dependencies: $out (spark-operator $SPARK_OPERATOR_CHART_VERSION from $mod)"
}

cmd_env() {
  echo "HELM=$HELM"
  echo "HELM_VERSION=$HELM_VERSION"
  echo "KUBERNETES_VERSION=$KUBERNETES_VERSION"
  echo "CHART_BUILD=$BUILD/lakehouse"
  echo "SPARK_OPERATOR_CHART_VERSION=$SPARK_OPERATOR_CHART_VERSION"
  echo "HELM_DOCS=$HELM_DOCS"
  echo "HELM_DOCS_VERSION=$HELM_DOCS_VERSION"
  echo "CHECKOV=$CHECKOV"
  echo "CHECKOV_VERSION=${CHECKOV_VERSION:-}"
}

case "${1:-}" in
  helm) cmd_helm ;;
  deps) cmd_deps ;;
  helm-docs) cmd_helm_docs ;;
  docs) cmd_docs ;;
  docs-check) cmd_docs_check ;;
  checkov) cmd_checkov ;;
  env) cmd_env ;;
  *) echo "usage: $0 helm|helm-docs|docs|docs-check|deps|checkov|env" >&2; exit 2 ;;
esac
