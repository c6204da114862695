#!/usr/bin/env bash
# A running Docker engine for the project's own tests (.ci/run, make test-images, make e2e).
#
#   engine.sh up       use the Docker that answers; else (root only) install Debian's docker.io,
#                      start dockerd in the background, wait for `docker info`, and register the
#                      capability-stripping runtime wrapper only if a privileged probe fails
#   engine.sh status   say which engine answers and whether this script started it
#
# A Docker that already answers (a laptop's Docker Desktop or Engine) is used as it is: nothing
# is installed, configured or restarted. A daemon this script did not start is never stopped.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${LAKEHOUSE_DOCKER_STATE:-/var/lib/lakehouse-docker}"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"
WRAPPER=/usr/local/libexec/lakehouse-runc
DAEMON_JSON=/etc/docker/daemon.json
PROBE_IMAGE=lakehouse/engine-probe:1

say() { printf '==> docker: %s\n' "$*"; }
die() {
  printf 'error: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '       %s\n' "$line" >&2; done
  exit 1
}

answers() { timeout 20 docker info >/dev/null 2>&1; }

started_here() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

install_engine() {
  command -v dockerd >/dev/null 2>&1 && return
  [[ $(id -u) == 0 ]] || die "no Docker engine answers and dockerd is not installed." \
    "Install and start Docker (Docker Desktop, or Docker Engine on Linux), then run this again."
  say "installing Debian's docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
}

start_dockerd() {
  [[ $(id -u) == 0 ]] || die "dockerd is installed but not running, and starting it needs root." \
    "Start it (\`sudo systemctl start docker\`) and run this again."
  mkdir -p "$STATE"
  say "starting dockerd (log: $LOG)"
  # setsid: the daemon outlives this script and the make recipe that called it.
  setsid dockerd >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local waited=0
  until answers; do
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || die "dockerd exited at start; its log says:" \
      "$(tail -n 5 "$LOG")"
    ((waited++ < 60)) || die "dockerd did not answer within 60 s; see $LOG"
    sleep 1
  done
}

stop_dockerd_started_here() {
  started_here || return 0
  local pid
  pid="$(cat "$PIDFILE")"
  kill "$pid"
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  rm -f "$PIDFILE"
}

probe_image() {
  # The smallest real image this host can make without any registry: the host's own `true`
  # and the libraries it links (re-made each time: a second, so never stale).
  local bin files
  bin="$(readlink -f "$(type -P true)")"
  files=("${bin#/}")
  while read -r lib; do files+=("${lib#/}"); done < <(ldd "$bin" | grep -o '/[^ ]*')
  tar -C / -ch "${files[@]}" 2>/dev/null | docker import --change "CMD [\"$bin\"]" - "$PROBE_IMAGE" >/dev/null
}

privileged_works() { docker run --rm --privileged "$PROBE_IMAGE" >/dev/null 2>&1; }

register_wrapper() {
  say "privileged containers fail on this host (its capability bounding set is partial):"
  say "registering $WRAPPER as the default OCI runtime"
  install -D -m 0755 "$HERE/lakehouse-runc" "$WRAPPER"
  mkdir -p "$(dirname "$DAEMON_JSON")"
  python3 - "$DAEMON_JSON" "$WRAPPER" <<'EOF'
import json, os, sys
path, wrapper = sys.argv[1:]
config = json.load(open(path)) if os.path.exists(path) else {}
config.setdefault("runtimes", {})["lakehouse-runc"] = {"path": wrapper}
config["default-runtime"] = "lakehouse-runc"
json.dump(config, open(path, "w"), indent=2)
EOF
  stop_dockerd_started_here
  start_dockerd
}

up() {
  if answers; then
    started_here && say "dockerd (started by this script, pid $(cat "$PIDFILE")) answers" \
      || say "using the running Docker engine"
  else
    install_engine
    start_dockerd
  fi
  # Only a daemon this script started may be reconfigured; a laptop's Docker is left as it is.
  if started_here; then
    probe_image
    if ! privileged_works; then
      register_wrapper
      privileged_works || die "privileged containers still fail with $WRAPPER registered; see $LOG"
    fi
  fi
  say "$(docker version --format 'engine {{.Server.Version}}, API {{.Server.APIVersion}}')"
}

status() {
  if ! answers; then
    echo "no Docker engine answers"
    return 1
  fi
  started_here && echo "dockerd started by scripts/docker/engine.sh (pid $(cat "$PIDFILE"))" \
    || echo "a Docker engine this project did not start"
}

case "${1:-up}" in
  up) up ;;
  status) status ;;
  *) die "usage: engine.sh up|status" ;;
esac
