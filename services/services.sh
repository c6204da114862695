#!/usr/bin/env bash
# The services tier's real servers, on 127.0.0.1 only: SeaweedFS (S3), PostgreSQL, MLflow.
#
#   services/services.sh up                 install (idempotent), start, initialise, print profile
#   services/services.sh env                print the services profile (`export KEY=VALUE` lines)
#   services/services.sh down               stop every server and delete the state folder
#   services/services.sh stop|start SERVER  one server (s3, postgres, mlflow): for fault tests
#   services/services.sh status             which servers run, on which port
#   services/services.sh install            only install (build SeaweedFS, apt PostgreSQL, ...)
#
# State (data, logs, pids, ports, credentials) lives in $LAKEHOUSE_SERVICES_DIR (default
# /tmp/lakehouse-services). Credentials and ports are generated when `up` finds no state: there
# are no default passwords. Buckets, roles and databases are created by the project's own init
# code (python -m lakehouse.bootstrap), the same the chart's init Jobs run.
#
# Exit codes: 0 ok, 1 failure, 3 a server cannot be installed on this machine (tests skip).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=${LAKEHOUSE_SERVICES_DIR:-/tmp/lakehouse-services}
PY=${PY:-.venv/bin/python}
[[ $PY == /* ]] || PY=$ROOT/$PY
VENV_BIN=$(dirname "$PY")
TOOLS_BIN=$ROOT/.tools/bin
UV=${UV:-$TOOLS_BIN/uv}
WEED=$TOOLS_BIN/weed
CACHE=${LAKEHOUSE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse}
PYLIB=$ROOT/.tools/mlflow-pylib
HOST=127.0.0.1

# Bucket and database names: the chart's defaults (charts/lakehouse/values.yaml).
RAW_BUCKET=lakehouse-raw
WAREHOUSE_BUCKET=lakehouse-warehouse
MLFLOW_BUCKET=lakehouse-mlflow
AIRFLOW_LOGS_BUCKET=lakehouse-airflow-logs
CATALOG_DB=iceberg_catalog
MLFLOW_DB=mlflow
AIRFLOW_DB=airflow

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
cannot_install() { log "cannot install: $*"; exit 3; }

# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"  # load_versions: versions.env, the environment wins

# ------------------------------------------------------------------------------ install

install_seaweedfs() {
  # Built once per machine into a versioned cache shared with the seaweedfs image
  # (images/gobuild.sh; a fresh clone, as in CI, reuses it: the build takes ~19 min on 2 busy
  # cores), then linked into .tools/bin.
  local cached
  cached=$(bash "$ROOT/images/gobuild.sh" --cached seaweedfs) || cannot_install "SeaweedFS could not be built"
  mkdir -p "$TOOLS_BIN"
  ln -sfn "$cached" "$WEED"
}

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

install_postgres() {
  if [[ -n $(pg_bindir) ]]; then return; fi
  [[ $EUID -eq 0 ]] || cannot_install "PostgreSQL missing and not root: apt-get install $POSTGRES_DEBIAN_PACKAGE"
  command -v apt-get >/dev/null || cannot_install "PostgreSQL missing and no apt-get"
  log "installing $POSTGRES_DEBIAN_PACKAGE from Debian"
  apt-get update -qq || cannot_install "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "$POSTGRES_DEBIAN_PACKAGE" >/dev/null || cannot_install "apt-get install $POSTGRES_DEBIAN_PACKAGE failed"
  [[ -n $(pg_bindir) ]] || cannot_install "no /usr/lib/postgresql/*/bin after installing"
}

install_mlflow_pylib() {  # boto3 (the MLflow server's S3 artifact store) comes with the ml extra
  PYLIB=""
  "$PY" -c 'import boto3' 2>/dev/null || cannot_install "boto3 missing from $PY (run make venv)"
}

install_all() {
  [[ -x $PY ]] || cannot_install "no Python venv at $PY (run make venv)"
  install_postgres
  install_mlflow_pylib
  install_seaweedfs
}

# ------------------------------------------------------------------------------ state

init_state() {
  mkdir -p "$STATE"
  chmod 0755 "$STATE"
  if [[ ! -f $STATE/credentials.env ]]; then
    log "generating credentials in $STATE/credentials.env"
    (umask 077 && "$PY" - >"$STATE/credentials.env" <<'EOF'
import secrets, string
alnum = string.ascii_lowercase + string.digits
word = lambda n, chars=alnum: "".join(secrets.choice(chars) for _ in range(n))
print(f"AWS_ACCESS_KEY_ID={word(20)}")
print(f"AWS_SECRET_ACCESS_KEY={word(40, alnum + string.ascii_uppercase)}")
print(f"POSTGRES_PASSWORD={secrets.token_hex(16)}")
for prefix, user in (("LAKEHOUSE_CATALOG", "iceberg"), ("MLFLOW_DB", "mlflow"), ("AIRFLOW_DB", "airflow")):
    print(f"{prefix}_USER={user}")
    print(f"{prefix}_PASSWORD={secrets.token_hex(16)}")
EOF
    )
  fi
  if [[ ! -f $STATE/ports.env ]]; then
    "$PY" - >"$STATE/ports.env" <<'EOF'
import socket
names = ["S3_PORT", "PG_PORT", "MLFLOW_PORT", "WEED_MASTER_PORT", "WEED_MASTER_GRPC_PORT",
         "WEED_VOLUME_PORT", "WEED_VOLUME_GRPC_PORT", "WEED_FILER_PORT", "WEED_FILER_GRPC_PORT",
         "WEED_S3_GRPC_PORT"]
socks = []
for name in names:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    print(f"{name}={s.getsockname()[1]}")
for s in socks:
    s.close()
EOF
  fi
  # shellcheck disable=SC1091
  set -a && . "$STATE/credentials.env" && . "$STATE/ports.env" && set +a
}

require_state() {
  [[ -f $STATE/credentials.env && -f $STATE/ports.env ]] ||
    die "services are not up ($STATE has no state): run services/services.sh up"
  # shellcheck disable=SC1091
  set -a && . "$STATE/credentials.env" && . "$STATE/ports.env" && set +a
}

# ------------------------------------------------------------------------------ processes

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_bg() {  # start_bg NAME CMD...: own session (pgid = pid), pid in $STATE/NAME.pid
  local name=$1
  shift
  setsid "$@" >>"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

stop_bg() {  # stop_bg NAME: TERM the server's process group, KILL after 20 s
  local pidfile=$STATE/$1.pid pid i
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$1 ignored TERM: KILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

wait_http() {  # wait_http NAME URL SECONDS: any HTTP answer counts
  local name=$1 url=$2 deadline=$((SECONDS + $3)) code
  while ((SECONDS < deadline)); do
    pid_alive "$STATE/$name.pid" || { tail -n 30 "$STATE/$name.log" >&2; die "$name exited while starting (log: $STATE/$name.log)"; }
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)
    [[ $code != 000 ]] && return 0
    sleep 0.5
  done
  tail -n 30 "$STATE/$name.log" >&2
  die "$name not answering at $url after $3 s (log: $STATE/$name.log)"
}

# ------------------------------------------------------------------------------ SeaweedFS

start_s3() {
  pid_alive "$STATE/s3.pid" && return 0
  mkdir -p "$STATE/s3/data"
  (umask 077 && cat >"$STATE/s3/identities.json" <<EOF
{"identities": [{"name": "lakehouse",
  "credentials": [{"accessKey": "$AWS_ACCESS_KEY_ID", "secretKey": "$AWS_SECRET_ACCESS_KEY"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
EOF
  )
  log "starting SeaweedFS S3 on $HOST:$S3_PORT"
  start_bg s3 "$WEED" server -dir="$STATE/s3/data" -ip="$HOST" -ip.bind="$HOST" \
    -master.port="$WEED_MASTER_PORT" -master.port.grpc="$WEED_MASTER_GRPC_PORT" \
    -master.volumeSizeLimitMB=64 -master.telemetry=false -volume.max=64 \
    -volume.port="$WEED_VOLUME_PORT" -volume.port.grpc="$WEED_VOLUME_GRPC_PORT" \
    -volume.preStopSeconds=0 \
    -filer -filer.port="$WEED_FILER_PORT" -filer.port.grpc="$WEED_FILER_GRPC_PORT" \
    -filer.localSocket="$STATE/s3/filer.sock" \
    -s3 -s3.port="$S3_PORT" -s3.port.grpc="$WEED_S3_GRPC_PORT" -s3.port.iceberg=0 \
    -s3.port.lance=0 -s3.localSocket="$STATE/s3/s3.sock" -s3.config="$STATE/s3/identities.json"
  wait_http s3 "http://$HOST:$S3_PORT/" 120
  # Answering is not ready: wait until an object can be written and deleted.
  LAKEHOUSE_S3_ENDPOINT="http://$HOST:$S3_PORT" "$PY" - <<'EOF' || die "S3 at $HOST:$S3_PORT accepts no writes (log: $STATE/s3.log)"
import time
from lakehouse.settings import load_settings
from lakehouse.storage import filesystem
settings = load_settings()
fs, _ = filesystem(settings, "s3://")
deadline = time.monotonic() + 120
while True:
    try:
        if not fs.exists("lakehouse-health"):
            fs.mkdir("lakehouse-health", create_parents=True)
        fs.pipe_file("lakehouse-health/probe", b"ok")
        fs.rm_file("lakehouse-health/probe")
        fs.rmdir("lakehouse-health")
        break
    except Exception as err:
        if time.monotonic() > deadline:
            raise SystemExit(f"S3 write probe failed: {err}")
        time.sleep(1)
EOF
}

# ------------------------------------------------------------------------------ PostgreSQL

as_pg() {  # initdb and postgres refuse root: use the postgres account there
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local bin pgdir=$STATE/pg
  bin=$(pg_bindir)
  if [[ ! -f $pgdir/data/PG_VERSION ]]; then
    mkdir -p "$pgdir/run"
    (umask 077 && printf '%s\n' "$POSTGRES_PASSWORD" >"$pgdir/pwfile")
    [[ $EUID -ne 0 ]] || chown -R postgres: "$pgdir"
    chmod 0700 "$pgdir"
    as_pg "$bin/initdb" -D "$pgdir/data" -U postgres --pwfile="$pgdir/pwfile" \
      --auth-host=scram-sha-256 --auth-local=peer -E UTF8 --locale=C.UTF-8 >"$STATE/postgres-initdb.log" 2>&1 ||
      { cat "$STATE/postgres-initdb.log" >&2; die "initdb failed"; }
    rm -f "$pgdir/pwfile"
  fi
  if as_pg "$bin/pg_ctl" -D "$pgdir/data" status >/dev/null 2>&1; then return 0; fi
  log "starting PostgreSQL $(basename "$(dirname "$bin")") on $HOST:$PG_PORT"
  touch "$STATE/postgres.log" && [[ $EUID -ne 0 ]] || chown postgres: "$STATE/postgres.log"
  as_pg "$bin/pg_ctl" -D "$pgdir/data" -l "$STATE/postgres.log" -w -t 120 -o \
    "-p $PG_PORT -k $pgdir/run -c listen_addresses=$HOST -c max_connections=40 -c shared_buffers=32MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { tail -n 30 "$STATE/postgres.log" >&2; die "PostgreSQL did not start"; }
}

stop_postgres() {
  local bin
  bin=$(pg_bindir)
  [[ -n $bin && -f $STATE/pg/data/PG_VERSION ]] || return 0
  as_pg "$bin/pg_ctl" -D "$STATE/pg/data" status >/dev/null 2>&1 || return 0
  as_pg "$bin/pg_ctl" -D "$STATE/pg/data" -m fast -w -t 60 stop >/dev/null
}

# ------------------------------------------------------------------------------ MLflow

start_mlflow() {
  pid_alive "$STATE/mlflow.pid" && return 0
  log "starting MLflow server on $HOST:$MLFLOW_PORT"
  # The password reaches libpq as PGPASSWORD, never the command line. The driver is named:
  # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3, and the venv has psycopg2. No job
  # runner (7 huey consumers, ~1 GB): the lakehouse uses none of its jobs.
  start_bg mlflow env PGPASSWORD="$MLFLOW_DB_PASSWORD" \
    MLFLOW_S3_ENDPOINT_URL="http://$HOST:$S3_PORT" AWS_DEFAULT_REGION=us-east-1 \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    PYTHONPATH="$PYLIB" \
    "$VENV_BIN/mlflow" server --host "$HOST" --port "$MLFLOW_PORT" --workers 1 \
    --backend-store-uri "postgresql+psycopg2://$MLFLOW_DB_USER@$HOST:$PG_PORT/$MLFLOW_DB" \
    --serve-artifacts --artifacts-destination "s3://$MLFLOW_BUCKET" \
    --allowed-hosts "$HOST:$MLFLOW_PORT,localhost:$MLFLOW_PORT"
  wait_http mlflow "http://$HOST:$MLFLOW_PORT/health" 300
}

# ------------------------------------------------------------------------------ init + profile

bootstrap() {  # the project's own init code, with the env the chart's init Jobs get
  env PGHOST="$HOST" PGPORT="$PG_PORT" PGUSER=postgres PGPASSWORD="$POSTGRES_PASSWORD" \
    PGDATABASE=postgres \
    CATALOG_DB="$CATALOG_DB" CATALOG_USER="$LAKEHOUSE_CATALOG_USER" CATALOG_PASSWORD="$LAKEHOUSE_CATALOG_PASSWORD" \
    MLFLOW_DB="$MLFLOW_DB" MLFLOW_USER="$MLFLOW_DB_USER" MLFLOW_PASSWORD="$MLFLOW_DB_PASSWORD" \
    AIRFLOW_DB="$AIRFLOW_DB" AIRFLOW_USER="$AIRFLOW_DB_USER" AIRFLOW_PASSWORD="$AIRFLOW_DB_PASSWORD" \
    BUCKETS="$RAW_BUCKET $WAREHOUSE_BUCKET $MLFLOW_BUCKET $AIRFLOW_LOGS_BUCKET" \
    LAKEHOUSE_S3_ENDPOINT="http://$HOST:$S3_PORT" LAKEHOUSE_INIT_WAIT_SECONDS=60 \
    "$PY" -m lakehouse.bootstrap all >&2
}

write_profile() {  # exactly the chart's ConfigMap keys, then its Secret keys
  local k
  {
    echo "# Services profile ($STATE): the chart's ConfigMap keys, then its Secret keys."
    printf 'export %s=%q\n' \
      LAKEHOUSE_HOME "$STATE/home" \
      LAKEHOUSE_RAW_URI "s3://$RAW_BUCKET" \
      LAKEHOUSE_WAREHOUSE_URI "s3://$WAREHOUSE_BUCKET" \
      LAKEHOUSE_CATALOG_URI "jdbc:postgresql://$HOST:$PG_PORT/$CATALOG_DB" \
      LAKEHOUSE_CATALOG_NAME lakehouse \
      LAKEHOUSE_S3_ENDPOINT "http://$HOST:$S3_PORT" \
      AWS_REGION us-east-1 \
      MLFLOW_TRACKING_URI "http://$HOST:$MLFLOW_PORT" \
      LAKEHOUSE_SHUFFLE_PARTITIONS 4 \
      LAKEHOUSE_SEED 42 \
      LAKEHOUSE_DEVICES 40 \
      LAKEHOUSE_SITES 4 \
      LAKEHOUSE_READING_SECONDS 60 \
      LAKEHOUSE_MAX_LATENESS_DAYS 7
    for k in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY POSTGRES_PASSWORD LAKEHOUSE_CATALOG_USER \
      LAKEHOUSE_CATALOG_PASSWORD MLFLOW_DB_USER MLFLOW_DB_PASSWORD AIRFLOW_DB_USER AIRFLOW_DB_PASSWORD; do
      printf 'export %s=%q\n' "$k" "${!k}"
    done
  } >"$STATE/profile.env.tmp"
  chmod 0600 "$STATE/profile.env.tmp"
  mv "$STATE/profile.env.tmp" "$STATE/profile.env"
}

# ------------------------------------------------------------------------------ commands

cmd_up() {
  local started=$SECONDS
  load_versions
  install_all
  init_state
  start_s3
  start_postgres
  bootstrap
  start_mlflow
  write_profile
  log "up in $((SECONDS - started)) s; state in $STATE"
  cat "$STATE/profile.env"
}

cmd_down() {
  [[ -d $STATE ]] || return 0
  stop_bg mlflow
  stop_postgres
  stop_bg s3
  rm -rf "$STATE"
  log "down; removed $STATE"
}

cmd_env() {
  [[ -f $STATE/profile.env ]] || die "services are not up (no $STATE/profile.env): run services/services.sh up"
  cat "$STATE/profile.env"
}

cmd_server() {  # cmd_server start|stop NAME
  load_versions
  require_state
  case "$2" in
  s3) if [[ $1 == stop ]]; then stop_bg s3; else start_s3; fi ;;
  postgres) if [[ $1 == stop ]]; then stop_postgres; else start_postgres; fi ;;
  mlflow) if [[ $1 == stop ]]; then stop_bg mlflow; else start_mlflow; fi ;;
  *) die "unknown server ${2:-}: s3, postgres or mlflow" ;;
  esac
}

cmd_status() {
  require_state
  local bin
  bin=$(pg_bindir)
  pid_alive "$STATE/s3.pid" && echo "s3        up   http://$HOST:$S3_PORT" || echo "s3        down"
  as_pg "$bin/pg_ctl" -D "$STATE/pg/data" status >/dev/null 2>&1 &&
    echo "postgres  up   $HOST:$PG_PORT" || echo "postgres  down"
  pid_alive "$STATE/mlflow.pid" && echo "mlflow    up   http://$HOST:$MLFLOW_PORT" || echo "mlflow    down"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
env) cmd_env ;;
status) cmd_status ;;
install) load_versions && install_all ;;
start | stop) cmd_server "$1" "${2:-}" ;;
*)
  sed -n '2,16p' "$0" >&2
  exit 2
  ;;
esac
