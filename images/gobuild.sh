#!/usr/bin/env bash
# Go binaries of the images, built on this host from the pinned Go modules (the module proxy is
# the only source) into a cache keyed by version, then staged under images/.build/<image>/, the
# only context path the seaweedfs and spark-operator Dockerfiles copy from.
#
#   images/gobuild.sh seaweedfs | spark-operator | flux ...   build (once per version) and stage
#   images/gobuild.sh --cached seaweedfs                 print the cached binary's path, building it if needed
#
# The services tier (services/services.sh) runs SeaweedFS from the same cache, so a machine
# builds it once for both. Static binaries (CGO_ENABLED=0): they run on any base.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
load_versions
CACHE="${LAKEHOUSE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse}"
STAGE="$ROOT/images/.build"

log() { printf '==> go: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 3; }

module_dir() {
  (cd /tmp && go mod download -json "$1") \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])' \
    || die "go mod download $1 failed"
}

build_seaweedfs() {  # $1: output path
  local dir
  # `go install mod@version` refuses modules with replace directives: build in the module's
  # own directory, the way its Makefile does.
  dir="$(module_dir "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION")"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -p 2 -trimpath -ldflags "-s -w" \
    -o "$1" ./weed) || die "go build of SeaweedFS failed"
}

build_spark_operator() {  # $1: output path
  local version="v$SPARK_OPERATOR_CHART_VERSION" dir work
  dir="$(module_dir "$SPARK_OPERATOR_MODULE@$version")"
  # Its go.mod pins k8s.io/* with replace directives, which only the main module may carry: a
  # scratch main module that requires it, with the same replace block and go.sum.
  work="$(mktemp -d)"
  {
    echo "module lakehouse.local/spark-operator"
    echo "go $(sed -n 's/^go //p' "$dir/go.mod")"
    echo "require $SPARK_OPERATOR_MODULE $version"
    sed -n '/^replace (/,/^)/p' "$dir/go.mod"
    sed -n '/^replace [^(]/p' "$dir/go.mod"
  } >"$work/go.mod"
  cp "$dir/go.sum" "$work/go.sum"
  local pkg=k8s.io/component-base/version
  (cd "$work" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod" go build -trimpath \
    -ldflags "-s -w -X $pkg.gitVersion=$version -X $pkg.gitTreeState=clean" \
    -o "$1" "$SPARK_OPERATOR_MODULE/cmd/operator") || die "go build of the Spark Operator failed"
  rm -rf "$work"
}

build_flux_controller() {  # $1: module, $2: version, $3: output path
  local dir work
  dir="$(module_dir "$1@v$2")"
  # Its go.mod replaces the api module with ./api, a nested module its zip leaves out: a scratch
  # main module requires the controller (and so the api at its required version) and carries the
  # other replace directives and the go.sum.
  work="$(mktemp -d)"
  {
    echo "module lakehouse.local/$(basename "$1")"
    echo "go $(sed -n 's/^go //p' "$dir/go.mod")"
    echo "require $1 v$2"
    sed -n '/^replace (/,/^)/p' "$dir/go.mod"
    sed -n '/^replace [^(]/p' "$dir/go.mod" | grep -v '=> \./'
  } >"$work/go.mod"
  cp "$dir/go.sum" "$work/go.sum"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod" go build -p 2 -trimpath \
    -ldflags "-s -w" -o "$3" "$1") || die "go build of $1 v$2 failed"
  rm -rf "$work"
}

build_flux() {  # $1: output directory; the two Flux controllers the GitOps test runs
  mkdir -p "$1"
  build_flux_controller "$FLUX_SOURCE_CONTROLLER_MODULE" "$FLUX_SOURCE_CONTROLLER_VERSION" \
    "$1/source-controller"
  build_flux_controller "$FLUX_HELM_CONTROLLER_MODULE" "$FLUX_HELM_CONTROLLER_VERSION" \
    "$1/helm-controller"
}

cached() {  # $1: image name; prints the cached binary, building it first if missing
  local name="$1" version binary builder
  case "$name" in
    seaweedfs) version="$SEAWEEDFS_VERSION" binary=weed builder=build_seaweedfs ;;
    spark-operator) version="v$SPARK_OPERATOR_CHART_VERSION" binary=spark-operator builder=build_spark_operator ;;
    # A folder: source-controller and helm-controller.
    flux) version="source-v$FLUX_SOURCE_CONTROLLER_VERSION-helm-v$FLUX_HELM_CONTROLLER_VERSION"
      binary=bin builder=build_flux ;;
    *) die "no Go binary for image $name (seaweedfs, spark-operator, flux)" ;;
  esac
  local path="$CACHE/$name/$version/$binary"
  if [[ ! -x "$path" || -d "$path" && ! -e "$path/.complete" ]]; then
    command -v go >/dev/null || die "$name needs the Go toolchain (go not on PATH)"
    log "building $name $version with $(go version | cut -d' ' -f3) (once per version; minutes)"
    local started=$SECONDS
    mkdir -p "$(dirname "$path")"
    rm -rf "$path.tmp"
    "$builder" "$path.tmp"
    [[ -f "$path.tmp" ]] || touch "$path.tmp/.complete"
    rm -rf "$path"
    mv "$path.tmp" "$path"
    log "$name built in $((SECONDS - started)) s: $path"
  fi
  echo "$path"
}

if [[ "${1:-}" == --cached ]]; then
  cached "$2"
  exit 0
fi
for name in "$@"; do
  path="$(cached "$name")"
  mkdir -p "$STAGE/$name"
  if [[ -d "$path" ]]; then cp "$path"/* "$STAGE/$name/"; else cp "$path" "$STAGE/$name/"; fi
done
