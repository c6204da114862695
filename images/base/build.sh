#!/usr/bin/env bash
# The project's base image made with debootstrap, for machines where no container registry
# answers (an air-gapped site, a CI sandbox). It stands in for BASE_IMAGE (debian:<suite>-slim
# pinned by digest in versions.env): the same Debian suite, minbase variant, from the Debian
# snapshot pinned in versions.env, so every build of it holds the same packages.
#
#   images/base/build.sh [TAG]      default TAG: lakehouse/base:<DEBIAN_RELEASE>-<DEBIAN_SNAPSHOT>
#
# Mirror: DEBIAN_MIRROR if set; else the snapshot archive of DEBIAN_SNAPSHOT; else, when that
# does not answer, the mirror of this host's apt sources (said so in the output). Needs root
# (debootstrap) and a running Docker; takes about a minute.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=/dev/null
source <(grep -E '^[A-Z][A-Z0-9_]*=' "$ROOT/versions.env")
TAG="${1:-lakehouse/base:${DEBIAN_RELEASE}-${DEBIAN_SNAPSHOT}}"

say() { printf '==> base image: %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG is already built"
  exit 0
fi
[[ $(id -u) == 0 ]] || die "debootstrap needs root; run \`sudo make base-image\`, or build with a" \
  "registry (BASE_IMAGE=$BASE_IMAGE)."

answers() { timeout 10 curl -fsI "$1/dists/$DEBIAN_RELEASE/Release" >/dev/null 2>&1; }

host_mirror() {
  # The first Debian (not security) URI of the host's apt sources, deb822 or one-line format.
  { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } \
    | grep -E '^[[:space:]]*(URIs:|deb )' | grep -Eo 'https?://[^ ]+/debian/?' | grep -v security \
    | head -n1 | sed 's:/$::' || true
}

snapshot="http://snapshot.debian.org/archive/debian/${DEBIAN_SNAPSHOT}"
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  if answers "$snapshot"; then
    mirror="$snapshot"
  else
    mirror="$(host_mirror)"
    [[ -n "$mirror" ]] && answers "$mirror" \
      || die "neither $snapshot nor this host's apt mirror answers; set DEBIAN_MIRROR"
    say "the snapshot archive does not answer; using this host's apt mirror $mirror"
  fi
fi
command -v debootstrap >/dev/null || {
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
say "debootstrap --variant=minbase $DEBIAN_RELEASE from $mirror"
started=$SECONDS
debootstrap --variant=minbase "$DEBIAN_RELEASE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
# As the registry's slim image: no package lists or downloaded .debs, no docs or man pages
# installed by later apt-get steps.
rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/archives/"*.deb
cat >"$work/rootfs/etc/dpkg/dpkg.cfg.d/lakehouse-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
  >"$work/rootfs/etc/apt/apt.conf.d/90lakehouse-no-recommends"
tar -C "$work/rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' \
  --change "LABEL org.opencontainers.image.title=lakehouse-base org.opencontainers.image.base.name=debian:${DEBIAN_RELEASE}-minbase org.opencontainers.image.version=${DEBIAN_SNAPSHOT}" \
  - "$TAG" >/dev/null
say "$TAG built in $((SECONDS - started)) s ($(docker image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
