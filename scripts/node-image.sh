#!/usr/bin/env bash
# A kind node image built from package registries only (`make node-image`), for machines where no
# registry serves kind's default node image (KIND_NODE_IMAGE of versions.env); scripts/cluster.sh
# create falls back to it there.
#
#   scripts/node-image.sh          make sure the image is in Docker: present, else `docker load`
#                                  of the cached tar (seconds), else built (minutes) and cached
#   scripts/node-image.sh tag      print the image's tag (no Docker needed)
#   NODE_IMAGE_REBUILD=1 scripts/node-image.sh     build again, ignoring the cached tar
#
# What goes in (every version from versions.env):
# - Go, from the module proxy (static, CGO_ENABLED=0; cached per version under
#   $CACHE/node-image/bin): the Kubernetes binaries (a scratch module requiring k8s.io/kubernetes
#   with a replace to the published v0.N.P of each of its staging modules, version stamped with
#   -X as Kubernetes' release build does), etcd, CoreDNS, crictl, local-path-provisioner; pause
#   is compiled from the C file in the kubernetes module (gcc -static).
# - Component images FROM the project's one base (images.build.resolve_base: BASE_IMAGE, or the
#   debootstrap base where no registry answers), under the names kubeadm asks for.
# - The node: that base plus systemd and Debian's containerd, runc and CNI plugins, kind's
#   images/base/files from the sigs.k8s.io/kind module, the component images imported into the
#   node's containerd and pinned, /kind/version, kind's default-storage manifest with the
#   local-path provisioner (scripts/node-image/default-storage.yaml), and a static
#   ptp/host-local/portmap CNI conflist (scripts/node-image/; one node: no CNI daemon).
#
# The finished image is cached as a zstd tar under $CACHE/node-images/, keyed by a hash of
# every input: the versions below, this script and scripts/node-image/*. The Go binaries are
# cached by version only: remove $CACHE/node-image/bin/<name>-<version> to rebuild one.
#
# Network: no kindnetd. kind 0.30.0's (kindest/kindnetd:v20250512-df8de77b) is built from the
# kind repository's untagged images/kindnetd module, which the module proxy would serve only by
# a commit's pseudo-version, and it mounts containerd's NRI socket (containerd >= 1.7; Debian
# bookworm's is 1.6). kind applies this image's /kind/manifests/default-cni.yaml (a ConfigMap
# saying so), so kind-config.yaml is the same for kindest/node and for this image.
#
# Seen on 2 cores shared with a CI run: cold 22 min (Kubernetes 10.5 min, CoreDNS 5.5 min,
# local-path-provisioner 2.5 min, crictl 1 min, etcd 1 min; images, node, assembly and the
# zstd tar about 1.5 min); after a change of this script only 1 min; from the cache 10 s.
set -euo pipefail
# The whole script is one compound command, parsed before it runs: editing it mid-build is safe.
{

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASSETS="$ROOT/scripts/node-image"

# Every value that goes into the image (the cache key hashes them).
KEY_VARS=(KUBERNETES_VERSION KIND_VERSION NODE_ETCD_VERSION NODE_COREDNS_VERSION NODE_PAUSE_VERSION
  NODE_CRICTL_VERSION LOCAL_PATH_PROVISIONER_VERSION BASE_IMAGE DEBIAN_RELEASE DEBIAN_SNAPSHOT)
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
load_versions "${KEY_VARS[@]}"

CACHE="${LAKEHOUSE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse}"
BIN_CACHE="$CACHE/node-image/bin"
IMAGE_CACHE="$CACHE/node-images"
K8S="v$KUBERNETES_VERSION"
STAGING="v0.${KUBERNETES_VERSION#1.}"
PAUSE_MINOR="${NODE_PAUSE_VERSION%.*}"
ETCD_TAG="$NODE_ETCD_VERSION-0"
# Names the node's containerd knows the images by: kubeadm's defaults (registry.k8s.io), the
# sandbox image of kind's containerd config (pause:<major.minor>), and the storage manifest's.
PROVISIONER_IMAGE="docker.io/lakehouse/local-path-provisioner:v$LOCAL_PATH_PROVISIONER_VERSION"
HELPER_IMAGE="docker.io/lakehouse/local-path-helper:v$LOCAL_PATH_PROVISIONER_VERSION"

say() { printf '==> node-image: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

cache_key() {
  {
    for key in "${KEY_VARS[@]}"; do printf '%s=%s\n' "$key" "${!key}"; done
    cat "${BASH_SOURCE[0]}"
    for file in "$ASSETS"/*; do printf '%s\n' "${file##*/}"; cat "$file"; done
  } | sha256sum | cut -c1-16
}
KEY="$(cache_key)"
TAG="lakehouse/kind-node:$K8S-$KEY"
TARBALL="$IMAGE_CACHE/kind-node-$K8S-$KEY.tar.zst"

if [[ "${1:-}" == tag ]]; then
  echo "$TAG"
  exit 0
fi
[[ -z "${1:-}" ]] || die "usage: scripts/node-image.sh [tag]"

STARTED=$SECONDS
TIMINGS=()
phase() { # <name> <command...>: runs it, records and prints its time
  local name="$1" started=$SECONDS
  shift
  say "$name"
  "$@"
  TIMINGS+=("$(printf '%-26s %4d s' "$name" $((SECONDS - started)))")
  say "$name: $((SECONDS - started)) s"
}
summary() {
  say "timings:"
  local line
  for line in "${TIMINGS[@]}"; do printf '    %s\n' "$line" >&2; done
  printf '    %-26s %4d s\n' total $((SECONDS - STARTED)) >&2
}

# Docker first, with the cluster's own message (fails within a second without it).
bash "$ROOT/scripts/cluster.sh" check-docker

image_size() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }

if [[ -z "${NODE_IMAGE_REBUILD:-}" ]]; then
  if docker image inspect "$TAG" >/dev/null 2>&1; then
    say "$TAG is in Docker ($(image_size "$TAG"))"
    exit 0
  fi
  if [[ -s "$TARBALL" ]]; then
    phase "docker load $(basename "$TARBALL") ($(du -h "$TARBALL" | cut -f1))" \
      sh -c 'zstd -dc -q "$1" | docker load >/dev/null' sh "$TARBALL"
    docker image inspect "$TAG" >/dev/null 2>&1 || die "$TARBALL did not hold $TAG"
    summary
    say "$TAG loaded from the cache ($(image_size "$TAG"))"
    exit 0
  fi
fi

command -v go >/dev/null || die "the Go toolchain is needed to build the node image (go not on PATH)"
command -v zstd >/dev/null || die "zstd is needed to cache the node image (apt-get install zstd)"
command -v gcc >/dev/null || die "gcc is needed to build pause (apt-get install gcc libc6-dev)"
say "building $TAG (Kubernetes $K8S, etcd $NODE_ETCD_VERSION, CoreDNS v$NODE_COREDNS_VERSION," \
  "pause $NODE_PAUSE_VERSION, local-path-provisioner v$LOCAL_PATH_PROVISIONER_VERSION)"
say "with $(go version | cut -d' ' -f3) from the module proxy ($(go env GOPROXY)); cold: about 25 min on 2 cores"

WORK="$(mktemp -d)"
NODE_CID=""
cleanup() {
  [[ -z "$NODE_CID" ]] || docker rm -f "$NODE_CID" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# Go (and C) binaries, cached per component and version.

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

module_dir() {
  (cd /tmp && go mod download -json "$1") \
    | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))' \
    || die "go mod download $1 failed"
}

module_time() { # the version's commit time (.info), as buildDate: reproducible
  (cd /tmp && go mod download -json "$1") \
    | python3 -c 'import json, sys; print(json.load(open(json.load(sys.stdin)["Info"]))["Time"])'
}

scratch_module() { # <dir> <name> <go.mod of the required module> <require line>; go.sum copied
  mkdir -p "$1"
  {
    echo "module lakehouse.local/$2"
    echo "go $(sed -n 's/^go //p' "$3")"
    sed -n '/^godebug /p' "$3"
    echo "require $4"
  } >"$1/go.mod"
  cp "$(dirname "$3")/go.sum" "$1/go.sum"
}

build_kubernetes() { # <out dir>
  local src work date pkg flags=() minor
  src="$(module_dir "k8s.io/kubernetes@$K8S")"
  date="$(module_time "k8s.io/kubernetes@$K8S")"
  minor="$(cut -d. -f2 <<<"$KUBERNETES_VERSION")"
  work="$WORK/go-kubernetes"
  scratch_module "$work" kubernetes "$src/go.mod" "k8s.io/kubernetes $K8S"
  # k8s.io/kubernetes replaces its 31 staging modules with ./staging/src/...; a main module
  # that requires it replaces each with the published module of the same release instead.
  {
    echo "replace ("
    sed -n "s#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/.*#\t\1 => \1 $STAGING#p" "$src/go.mod"
    echo ")"
  } >>"$work/go.mod"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=(-X "$pkg.gitVersion=$K8S" -X "$pkg.gitMajor=1" -X "$pkg.gitMinor=$minor"
      -X "$pkg.gitCommit=" -X "$pkg.gitTreeState=clean" -X "$pkg.buildDate=$date")
  done
  (cd "$work" && go build -mod=mod -trimpath -ldflags "-s -w ${flags[*]}" -o "$1/" \
    k8s.io/kubernetes/cmd/{kubeadm,kubelet,kubectl,kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy})
  [[ "$("$1/kubeadm" version -o short)" == "$K8S" ]] || die "the built kubeadm does not report $K8S"
}

build_etcd() { # <out dir>
  local v="v$NODE_ETCD_VERSION" src work
  src="$(module_dir "go.etcd.io/etcd/server/v3@$v")"
  # Its go.mod replaces the etcd modules it needs with ../<dir>: required from a scratch module,
  # the published modules of the same release are used.
  work="$WORK/go-etcd"
  scratch_module "$work" etcd "$src/go.mod" "go.etcd.io/etcd/server/v3 $v"
  (cd "$work" && go build -mod=mod -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$v" -o "$1/etcd" go.etcd.io/etcd/server/v3)
  grep -q "^etcd Version: $NODE_ETCD_VERSION$" <<<"$("$1/etcd" --version)" || die "the built etcd is not $v"
}

go_install() { # <out dir> <module/package@version> [ldflags]
  GOBIN="$1" go install -trimpath -ldflags "-s -w ${3:-}" "$2"
}

build_coredns() {
  go_install "$1" "github.com/coredns/coredns@v$NODE_COREDNS_VERSION" \
    "-X github.com/coredns/coredns/coremain.GitCommit=v$NODE_COREDNS_VERSION"
}

build_crictl() {
  go_install "$1" "sigs.k8s.io/cri-tools/cmd/crictl@v$NODE_CRICTL_VERSION" \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=v$NODE_CRICTL_VERSION"
}

build_local_path_provisioner() {
  go_install "$1" "github.com/rancher/local-path-provisioner@v$LOCAL_PATH_PROVISIONER_VERSION" \
    "-X main.VERSION=v$LOCAL_PATH_PROVISIONER_VERSION"
}

build_pause() { # as build/pause/Makefile does, for linux/amd64 or the host's architecture
  local src
  src="$(module_dir "k8s.io/kubernetes@$K8S")"
  gcc -Os -Wall -Werror -static "-DVERSION=v$NODE_PAUSE_VERSION" -o "$1/pause" "$src/build/pause/linux/pause.c"
}

cached_build() { # <name> <version> <builder>: sets BIN[name] to the cached directory
  local name="$1" version="$2" dir="$BIN_CACHE/$1-$2"
  if [[ ! -f "$dir/.done" ]]; then
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    local started=$SECONDS
    say "  $name $version: building (log: $BIN_CACHE/$name-$version.log)"
    # In the background and waited for: errexit holds inside it, and its output goes to the log.
    "$3" "$dir.tmp" >"$BIN_CACHE/$name-$version.log" 2>&1 &
    wait $! || {
      tail -n 25 "$BIN_CACHE/$name-$version.log" >&2
      die "building $name $version failed"
    }
    touch "$dir.tmp/.done"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    say "  $name $version: built in $((SECONDS - started)) s ($(du -sh "$dir" | cut -f1))"
  else
    say "  $name $version: cached ($dir)"
  fi
  BIN[$name]="$dir"
}

declare -A BIN
go_binaries() {
  cached_build kubernetes "$K8S" build_kubernetes
  cached_build etcd "v$NODE_ETCD_VERSION" build_etcd
  cached_build coredns "v$NODE_COREDNS_VERSION" build_coredns
  cached_build crictl "v$NODE_CRICTL_VERSION" build_crictl
  cached_build local-path-provisioner "v$LOCAL_PATH_PROVISIONER_VERSION" build_local_path_provisioner
  cached_build pause "$NODE_PAUSE_VERSION" build_pause
}

# ---------------------------------------------------------------------------------------------
# Images, built FROM the project's one base with the project's builder (images/build.py).

resolve_builder() {
  local out
  out="$(cd "$ROOT" && python3 -c '
import shlex
from images.build import builder, resolve_base
base = resolve_base()
prefix, env = builder()
print("BASE=" + shlex.quote(base))
print("BUILD=(" + " ".join(shlex.quote(p) for p in prefix) + ")")
print("BUILD_ENV=(" + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + ")")
')" || die "images.build could not resolve the base image or a builder (see above)"
  eval "$(grep -E '^(BASE|BUILD|BUILD_ENV)=' <<<"$out")"
  grep -vE '^(BASE|BUILD|BUILD_ENV)=' <<<"$out" >&2 || true
  say "  base $BASE, builder ${BUILD[*]}"
}

docker_build() { # <tag> <context dir>: Dockerfile in the context
  local log="$WORK/build-${1//[\/:]/_}.log" started=$SECONDS
  if ! env "${BUILD_ENV[@]}" "${BUILD[@]}" --progress=plain --build-arg "BASE_IMAGE=$BASE" \
    --tag "$1" "$2" >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "docker build of $1 failed"
  fi
  say "  $1: $((SECONDS - started)) s, $(image_size "$1")"
}

LOCAL_IMAGES=()     # tag on this host -> name in the node (parallel arrays)
NODE_NAMES=()
component() { # <host tag> <name(s) in the node...>
  local tag="$1" name
  shift
  for name in "$@"; do
    LOCAL_IMAGES+=("$tag")
    NODE_NAMES+=("$name")
  done
}

component_images() {
  local ctx name
  resolve_builder
  # kube-apiserver, kube-controller-manager, kube-scheduler: one static binary each (kubeadm's
  # static pods run them by name from PATH).
  for name in kube-apiserver kube-controller-manager kube-scheduler; do
    ctx="$WORK/img-$name" && mkdir -p "$ctx"
    cp "${BIN[kubernetes]}/$name" "$ctx/"
    cat >"$ctx/Dockerfile" <<EOF
ARG BASE_IMAGE
FROM \$BASE_IMAGE
COPY $name /usr/local/bin/$name
LABEL org.opencontainers.image.title=$name org.opencontainers.image.version=$K8S
EOF
    docker_build "lakehouse/node-$name:$K8S" "$ctx"
    component "lakehouse/node-$name:$K8S" "registry.k8s.io/$name:$K8S"
  done

  # kube-proxy (iptables mode, kind's default) runs iptables, ip6tables, conntrack; the wrapper
  # picks legacy or nft as the node uses it.
  ctx="$WORK/img-kube-proxy" && mkdir -p "$ctx"
  cp "${BIN[kubernetes]}/kube-proxy" "$ASSETS/iptables-wrapper" "$ctx/"
  cat >"$ctx/Dockerfile" <<EOF
ARG BASE_IMAGE
FROM \$BASE_IMAGE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables nftables conntrack ipset kmod >/dev/null \\
 && rm -rf /var/lib/apt/lists/*
COPY iptables-wrapper /usr/sbin/iptables-wrapper
RUN chmod 0755 /usr/sbin/iptables-wrapper \\
 && for cmd in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do \\
      ln -sf iptables-wrapper /usr/sbin/\$cmd; done
COPY kube-proxy /usr/local/bin/kube-proxy
LABEL org.opencontainers.image.title=kube-proxy org.opencontainers.image.version=$K8S
EOF
  docker_build "lakehouse/node-kube-proxy:$K8S" "$ctx"
  component "lakehouse/node-kube-proxy:$K8S" "registry.k8s.io/kube-proxy:$K8S"

  ctx="$WORK/img-etcd" && mkdir -p "$ctx"
  cp "${BIN[etcd]}/etcd" "$ctx/"
  cat >"$ctx/Dockerfile" <<EOF
ARG BASE_IMAGE
FROM \$BASE_IMAGE
COPY etcd /usr/local/bin/etcd
LABEL org.opencontainers.image.title=etcd org.opencontainers.image.version=$ETCD_TAG
EOF
  docker_build "lakehouse/node-etcd:$ETCD_TAG" "$ctx"
  component "lakehouse/node-etcd:$ETCD_TAG" "registry.k8s.io/etcd:$ETCD_TAG"

  ctx="$WORK/img-coredns" && mkdir -p "$ctx"
  cp "${BIN[coredns]}/coredns" "$ctx/"
  cat >"$ctx/Dockerfile" <<EOF
ARG BASE_IMAGE
FROM \$BASE_IMAGE
COPY coredns /coredns
ENTRYPOINT ["/coredns"]
LABEL org.opencontainers.image.title=coredns org.opencontainers.image.version=v$NODE_COREDNS_VERSION
EOF
  docker_build "lakehouse/node-coredns:v$NODE_COREDNS_VERSION" "$ctx"
  component "lakehouse/node-coredns:v$NODE_COREDNS_VERSION" "registry.k8s.io/coredns/coredns:v$NODE_COREDNS_VERSION"

  ctx="$WORK/img-pause" && mkdir -p "$ctx"
  cp "${BIN[pause]}/pause" "$ctx/"
  cat >"$ctx/Dockerfile" <<EOF
ARG BASE_IMAGE
FROM \$BASE_IMAGE
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
LABEL org.opencontainers.image.title=pause org.opencontainers.image.version=$NODE_PAUSE_VERSION
EOF
  docker_build "lakehouse/node-pause:$NODE_PAUSE_VERSION" "$ctx"
  component "lakehouse/node-pause:$NODE_PAUSE_VERSION" \
    "registry.k8s.io/pause:$NODE_PAUSE_VERSION" "registry.k8s.io/pause:$PAUSE_MINOR"

  # The provisioner, and its helper pod's image (it only runs the ConfigMap's setup/teardown
  # scripts: /bin/sh, mkdir, rm, all in the base).
  ctx="$WORK/img-local-path-provisioner" && mkdir -p "$ctx"
  cp "${BIN[local-path-provisioner]}/local-path-provisioner" "$ctx/"
  cat >"$ctx/Dockerfile" <<EOF
ARG BASE_IMAGE
FROM \$BASE_IMAGE
COPY local-path-provisioner /usr/local/bin/local-path-provisioner
ENTRYPOINT ["/usr/local/bin/local-path-provisioner"]
LABEL org.opencontainers.image.title=local-path-provisioner org.opencontainers.image.version=v$LOCAL_PATH_PROVISIONER_VERSION
EOF
  docker_build "${PROVISIONER_IMAGE#docker.io/}" "$ctx"
  component "${PROVISIONER_IMAGE#docker.io/}" "$PROVISIONER_IMAGE"
  ctx="$WORK/img-local-path-helper" && mkdir -p "$ctx"
  cat >"$ctx/Dockerfile" <<EOF
ARG BASE_IMAGE
FROM \$BASE_IMAGE
LABEL org.opencontainers.image.title=local-path-helper org.opencontainers.image.version=v$LOCAL_PATH_PROVISIONER_VERSION
EOF
  docker_build "${HELPER_IMAGE#docker.io/}" "$ctx"
  component "${HELPER_IMAGE#docker.io/}" "$HELPER_IMAGE"
}

# ---------------------------------------------------------------------------------------------
# The node.

NODE_BASE="lakehouse/kind-node-base:$K8S-$KEY"

node_base() {
  local ctx="$WORK/img-node" kind_dir f
  kind_dir="$(module_dir "sigs.k8s.io/kind@v$KIND_VERSION")/images/base/files"
  mkdir -p "$ctx"
  # kind's static files with the modes its Dockerfile gives them (the module cache's are 0444).
  cp -r "$kind_dir" "$ctx/files"
  chmod -R u+w "$ctx/files"
  find "$ctx/files" -type d -exec chmod 0755 {} +
  find "$ctx/files" -type f -exec chmod 0644 {} +
  chmod 0755 "$ctx/files/usr/local/bin/"* "$ctx/files/kind/bin/"*
  # Debian's containerd 1.6 runs kind's config (format v2) with one change: pods may not lower
  # their oom_score_adj, which needs CAP_SYS_RESOURCE (a sandbox without it fails every pod
  # sandbox with "can't get final child's PID from pipe: EOF"; elsewhere it changes nothing
  # kubelet relies on).
  f="$ctx/files/etc/containerd/config.toml"
  grep -q '^  restrict_oom_score_adj = false' "$f" || die "kind's containerd config changed: $f"
  sed -i 's/^  restrict_oom_score_adj = false/  restrict_oom_score_adj = true/' "$f"
  mkdir -p "$ctx/files/kind/manifests" "$ctx/files/etc/cni/net.d"
  echo "$K8S" >"$ctx/files/kind/version"
  sed -e "s#__PROVISIONER_IMAGE__#$PROVISIONER_IMAGE#" -e "s#__HELPER_IMAGE__#$HELPER_IMAGE#" \
    "$ASSETS/default-storage.yaml" >"$ctx/files/kind/manifests/default-storage.yaml"
  cp "$ASSETS/default-cni.yaml" "$ctx/files/kind/manifests/default-cni.yaml"
  cp "$ASSETS/10-lakehouse-ptp.conflist" "$ctx/files/etc/cni/net.d/"
  chmod 0644 "$ctx/files/kind/manifests/"* "$ctx/files/etc/cni/net.d/"*
  mkdir -p "$ctx/bin"
  cp "${BIN[kubernetes]}"/{kubeadm,kubelet,kubectl} "${BIN[crictl]}/crictl" "$ctx/bin/"
  cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE_IMAGE
FROM $BASE_IMAGE
# kind's base image package set (images/base/Dockerfile of the pinned kind), with Debian's
# containerd, runc and CNI plugins instead of kind's own builds of them; no NFS/iSCSI clients.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      systemd \
      conntrack iptables nftables iproute2 ethtool util-linux mount kmod \
      libseccomp2 pigz fuse-overlayfs \
      bash ca-certificates curl jq procps \
      containerd runc containernetworking-plugins >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
 && rm -f /lib/systemd/system/multi-user.target.wants/* \
 && rm -f /etc/systemd/system/*.wants/* \
 && rm -f /lib/systemd/system/local-fs.target.wants/* \
 && rm -f /lib/systemd/system/sockets.target.wants/*udev* \
 && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \
 && rm -f /lib/systemd/system/basic.target.wants/* \
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
 && ln -sf "$(which systemd)" /sbin/init
COPY files/ /
COPY bin/kubeadm bin/kubelet bin/kubectl /usr/bin/
COPY bin/crictl /usr/local/bin/
# kind's units and scripts expect containerd in /usr/local/bin and the plugins in /opt/cni/bin.
RUN ln -s /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/bin/ctr /usr/local/bin/ \
 && mkdir -p /opt/cni/bin /etc/kubernetes/manifests \
 && ln -s /usr/lib/cni/host-local /usr/lib/cni/loopback /usr/lib/cni/ptp /usr/lib/cni/portmap /opt/cni/bin/ \
 && ctr oci spec > /etc/containerd/cri-base.json \
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
 && systemctl mask systemd-binfmt.service \
 && containerd --version && kubeadm version -o short
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
EOF
  docker_build "$NODE_BASE" "$ctx"
}

assemble() {
  local i tar="$WORK/images.tar" saved=()
  # The images under the names the node uses, saved in one archive.
  for i in "${!LOCAL_IMAGES[@]}"; do
    docker tag "${LOCAL_IMAGES[$i]}" "${NODE_NAMES[$i]}"
    saved+=("${NODE_NAMES[$i]}")
  done
  docker save "${saved[@]}" -o "$tar"
  # Those names are the node's, not this host's: only the lakehouse/node-* tags stay here.
  for i in "${!NODE_NAMES[@]}"; do
    [[ "${NODE_NAMES[$i]}" == "docker.io/${LOCAL_IMAGES[$i]}" ]] || docker rmi "${NODE_NAMES[$i]}" >/dev/null
  done
  say "  $(du -h "$tar" | cut -f1) of images for the node's containerd"
  # As kind builds a node: run the base, import into its containerd, commit.
  NODE_CID="$(docker run -d --privileged --entrypoint sleep "$NODE_BASE" infinity)"
  docker exec "$NODE_CID" sh -c 'containerd >/var/log/containerd-build.log 2>&1 & echo $! >/run/containerd-build.pid'
  for i in $(seq 60); do
    docker exec "$NODE_CID" ctr version >/dev/null 2>&1 && break
    ((i < 60)) || die "containerd did not start in the node: $(docker exec "$NODE_CID" tail -n 5 /var/log/containerd-build.log)"
    sleep 1
  done
  docker exec -i "$NODE_CID" ctr -n k8s.io images import --all-platforms --no-unpack --digests - <"$tar" >/dev/null
  # ctr 1.6 has no --label on import; kubelet never garbage-collects pinned images.
  for i in "${!NODE_NAMES[@]}"; do
    docker exec "$NODE_CID" ctr -n k8s.io images label "${NODE_NAMES[$i]}" io.cri-containerd.pinned=pinned >/dev/null
  done
  local listed
  listed="$(docker exec "$NODE_CID" ctr -n k8s.io images ls -q)"
  for i in "${!NODE_NAMES[@]}"; do
    grep -qx "${NODE_NAMES[$i]}" <<<"$listed" || die "${NODE_NAMES[$i]} is not in the node's containerd: $listed"
  done
  say "  in the node's containerd, pinned: $(printf '%s\n' "${NODE_NAMES[@]}" | sort -u | tr '\n' ' ')"
  # The names --digests adds (import-<date>@sha256:...) hold nothing the tags above do not.
  docker exec "$NODE_CID" sh -c 'ctr -n k8s.io images ls -q | grep "^import-" | xargs -r ctr -n k8s.io images rm' >/dev/null
  # `sleep` (pid 1 here) reaps no child: containerd is gone once it is a zombie.
  docker exec "$NODE_CID" sh -c 'pid=$(cat /run/containerd-build.pid); kill "$pid"
    while [ -d "/proc/$pid" ] && ! grep -q "^State:.*Z" "/proc/$pid/status" 2>/dev/null; do sleep 0.2; done
    rm -rf /run/containerd-build.pid /run/containerd /var/log/containerd-build.log /tmp/*'
  docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
    --change "LABEL org.opencontainers.image.title=lakehouse-kind-node org.opencontainers.image.version=$K8S io.lakehouse.node-image.key=$KEY" \
    "$NODE_CID" "$TAG" >/dev/null
  docker rm -f "$NODE_CID" >/dev/null
  NODE_CID=""
  docker rmi "$NODE_BASE" >/dev/null 2>&1 || true
  say "  $TAG: $(image_size "$TAG")"
}

save_cache() {
  mkdir -p "$IMAGE_CACHE"
  # One tar per key: older keys' tars are left for their own checkouts; remove by hand if needed.
  docker save "$TAG" | zstd -q -T0 -3 -o "$TARBALL.tmp"
  mv -f "$TARBALL.tmp" "$TARBALL"
  say "  $TARBALL ($(du -h "$TARBALL" | cut -f1))"
}

phase "Go binaries" go_binaries
phase "component images" component_images
phase "node base" node_base
phase "node assembly" assemble
phase "cache (zstd)" save_cache
summary
say "$TAG built ($(image_size "$TAG")); \`make cluster-create\` uses it where no registry serves $KIND_NODE_IMAGE"
exit
}
