#!/bin/bash
# The postgres image's entrypoint: initdb on an empty PGDATA with the superuser password from
# the environment, then the server on every address (the chart's NetworkPolicy and pg_hba's
# scram-sha-256 guard it). Any other command runs as given (the chart's init Job runs psql).
set -euo pipefail

die() { echo "postgres-entrypoint: $*" >&2; exit 64; }

# initdb and postgres look the running uid up; an arbitrary uid gets an entry from nss_wrapper.
if ! whoami >/dev/null 2>&1; then
  export NSS_WRAPPER_PASSWD=/tmp/passwd NSS_WRAPPER_GROUP=/tmp/group
  echo "postgres:x:$(id -u):$(id -g):PostgreSQL:${PGDATA%/*}:/bin/false" >"$NSS_WRAPPER_PASSWD"
  echo "postgres:x:$(id -g):" >"$NSS_WRAPPER_GROUP"
  LD_PRELOAD="$(find /usr/lib -name libnss_wrapper.so | head -n1)"
  export LD_PRELOAD
fi

superuser_password() {
  if [[ -n "${POSTGRES_PASSWORD_FILE:-}" ]]; then
    cat "$POSTGRES_PASSWORD_FILE"
  else
    printf '%s' "${POSTGRES_PASSWORD:-}"
  fi
}

initialize() {
  local password pwfile
  password="$(superuser_password)"
  [[ -n "$password" ]] || die "PGDATA ($PGDATA) is empty and no superuser password is set:" \
    "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (there is no default password)"
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  pwfile="$(mktemp)"
  printf '%s\n' "$password" >"$pwfile"
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of flags
  initdb --username=postgres --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
    ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  # Remote clients: password (scram) only; initdb's own lines cover the local socket.
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "postgres-entrypoint: initialized $PGDATA" >&2
}

if [[ "${1:-postgres}" == postgres || "${1:-}" == -* ]]; then
  [[ "${1:-}" == postgres ]] && shift
  [[ -s "$PGDATA/PG_VERSION" ]] || initialize
  exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
