#!/usr/bin/env bash
# Entry point of the PostgreSQL stand-in image, with the behaviour of the official image's:
#   - a first argument starting with "-" means options for the server: "postgres" is prepended;
#   - for the server, as root: create PGDATA, hand it to user postgres, and restart as postgres;
#   - on an empty PGDATA only: initdb with POSTGRES_USER / POSTGRES_PASSWORD and
#     POSTGRES_INITDB_ARGS, password authentication for every host, create POSTGRES_DB
#     (default POSTGRES_USER) unless it is "postgres", run /docker-entrypoint-initdb.d/*;
#   - then exec the command (the server, in the foreground).
# Every POSTGRES_* variable may instead be read from a file named by POSTGRES_*_FILE.
set -Eeuo pipefail

note() { printf '%s: %s\n' "$(basename "$0")" "$*"; }
fail() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# env_or_file VAR [DEFAULT]: VAR's value, or the content of the file named by VAR_FILE.
env_or_file() {
  local var="$1" file_var="${1}_FILE" value="${2:-}"
  if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
    fail "both $var and $file_var are set; use one"
  fi
  if [[ -n "${!var:-}" ]]; then
    value="${!var}"
  elif [[ -n "${!file_var:-}" ]]; then
    value="$(<"${!file_var}")"
  fi
  export "$var=$value"
  unset "$file_var"
}

load_settings() {
  env_or_file POSTGRES_PASSWORD
  env_or_file POSTGRES_USER postgres
  env_or_file POSTGRES_DB "$POSTGRES_USER"
  env_or_file POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}" "${POSTGRES_INITDB_WALDIR:=}"
}

# Options that make the server print something and exit: no setup for those.
only_asks() {
  local arg
  for arg; do
    case "$arg" in -'?' | --help | --describe-config | -V | --version) return 0 ;; esac
  done
  return 1
}

prepare_directories() {
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA" || true
  mkdir -p /var/run/postgresql || true
  chmod 3775 /var/run/postgresql || true
  if [[ -n "$POSTGRES_INITDB_WALDIR" ]]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    chmod 700 "$POSTGRES_INITDB_WALDIR"
  fi
  if [[ "$(id -u)" == 0 ]]; then
    local dir
    for dir in "$PGDATA" /var/run/postgresql ${POSTGRES_INITDB_WALDIR:+"$POSTGRES_INITDB_WALDIR"}; do
      find "$dir" \! -user postgres -exec chown postgres '{}' +
    done
  fi
}

# psql as the superuser over the local socket (never TCP) during initialisation.
sql() {
  PGHOST='' PGHOSTADDR='' psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password \
    --username "$POSTGRES_USER" "$@"
}

initialise() { # server arguments (without "postgres")
  if [[ -z "$POSTGRES_PASSWORD" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
    fail "the database is not initialised and no superuser password is set: set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust, not recommended)"
  fi
  ls /docker-entrypoint-initdb.d/ >/dev/null

  local initdb_args=()
  # Word splitting with shell quoting, as a command line would have it.
  eval "initdb_args=( $POSTGRES_INITDB_ARGS )"
  [[ -z "$POSTGRES_INITDB_WALDIR" ]] || initdb_args=(--waldir "$POSTGRES_INITDB_WALDIR" "${initdb_args[@]}")
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") "${initdb_args[@]}"

  # Connections over TCP from anywhere authenticate with the server's password encryption
  # (scram-sha-256 unless configured otherwise), or POSTGRES_HOST_AUTH_METHOD.
  local method="$POSTGRES_HOST_AUTH_METHOD"
  [[ -n "$method" ]] || method="$(postgres -C password_encryption "$@")"
  printf '\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"

  export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
  # A temporary server on the socket only, with the same options as the real one.
  NOTIFY_SOCKET='' PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -w start \
    -o "$(printf '%q ' "$@" -c listen_addresses='' -p "${PGPORT:-5432}")"

  if [[ "$POSTGRES_DB" != postgres ]]; then
    local exists
    exists="$(sql --dbname postgres --tuples-only --set db="$POSTGRES_DB" \
      <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
    if [[ -z "${exists//[[:space:]]/}" ]]; then
      note "creating database $POSTGRES_DB"
      sql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
  fi

  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [[ -e "$f" ]] || continue
    case "$f" in
      *.sh)
        if [[ -x "$f" ]]; then note "running $f"; "$f"; else note "sourcing $f"; . "$f"; fi ;;
      *.sql) note "running $f"; sql --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) note "running $f"; gunzip -c "$f" | sql --dbname "$POSTGRES_DB" ;;
      *.sql.xz) note "running $f"; xzcat "$f" | sql --dbname "$POSTGRES_DB" ;;
      *) note "ignoring $f" ;;
    esac
  done

  PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  note "PostgreSQL init process complete; ready for start up."
}

main() {
  if [[ "${1:-}" == -* ]]; then
    set -- postgres "$@"
  fi
  if [[ "${1:-}" == postgres ]] && ! only_asks "$@"; then
    load_settings
    prepare_directories
    if [[ "$(id -u)" == 0 ]]; then
      exec gosu postgres "${BASH_SOURCE[0]}" "$@"
    fi
    if [[ -s "$PGDATA/PG_VERSION" ]]; then
      note "PostgreSQL Database directory appears to contain a database; Skipping initialization"
    else
      initialise "${@:2}"
    fi
  fi
  exec "$@"
}

main "$@"
