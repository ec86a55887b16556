#!/usr/bin/env bash
# Entry point of the MySQL stand-in image (MariaDB), with the behaviour of the official mysql
# image's:
#   - a first argument starting with "-" means options for the server: "mysqld" is prepended;
#   - for the server: check the configuration (with the given options) before anything else;
#     as root, hand the data and socket directories to user mysql and restart as mysql;
#   - on a data directory without a database only: create one, set the root password
#     (MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD) for
#     root@localhost and root@MYSQL_ROOT_HOST (default %), create MYSQL_DATABASE, create
#     MYSQL_USER@% with MYSQL_PASSWORD and all privileges on MYSQL_DATABASE, and run
#     /docker-entrypoint-initdb.d/* (*.sh, *.sql, *.sql.gz, *.sql.xz) once, in MYSQL_DATABASE;
#   - then exec the command (the server, in the foreground).
# Every MYSQL_* variable may instead be read from a file named by MYSQL_*_FILE.
set -Eeuo pipefail

note() { printf '%s [Entrypoint]: %s\n' "$(date -u +%FT%TZ)" "$*"; }
fail() { printf '%s [Entrypoint]: error: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; exit 1; }

env_or_file() { # VAR [DEFAULT]
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
  local var
  for var in MYSQL_ROOT_PASSWORD MYSQL_DATABASE MYSQL_USER MYSQL_PASSWORD \
    MYSQL_ALLOW_EMPTY_PASSWORD MYSQL_RANDOM_ROOT_PASSWORD MYSQL_ONETIME_PASSWORD; do
    env_or_file "$var"
  done
  env_or_file MYSQL_ROOT_HOST '%'
}

# Options that make the server print something and exit: no setup for those.
only_asks() {
  local arg
  for arg; do
    case "$arg" in -'?' | --help | --print-defaults | -V | --version) return 0 ;; esac
  done
  return 1
}

# The value of a server setting with the given options (the server parses them all, so an
# option it does not know fails here, with its message, before anything is initialised).
server_setting() { # NAME SERVER-COMMAND...
  local name="$1" out
  shift
  if ! out="$("$@" --verbose --help 2>&1 >/dev/null)"; then
    fail "the server rejects its configuration or options: $* ${out:+
$out}"
  fi
  "$@" --verbose --help 2>/dev/null | awk -v name="$name" '$1 == name && NF == 2 { print $2; exit }'
}

# A string as the inside of an SQL single-quoted literal.
sql_literal() { local s="${1//\\/\\\\}"; printf '%s' "${s//\'/\\\'}"; }
# A name as the inside of an SQL back-quoted identifier.
sql_name() { printf '%s' "${1//\`/\`\`}"; }

# The root password as an option file, read through process substitution as the official image
# does (--defaults-extra-file=<(root_passfile)): never on a command line, where any user of the
# host sees it. Empty until root has its password.
root_passfile() {
  if [[ -n "${ROOT_READY:-}" && -n "$MYSQL_ROOT_PASSWORD" ]]; then
    printf '[client]\npassword="%s"\n' "$MYSQL_ROOT_PASSWORD"
  fi
}

client() { # ARGS... : mysql over the temporary server's socket, as root
  mysql --defaults-extra-file=<(root_passfile) --protocol=socket --socket="$SOCKET" -uroot -hlocalhost \
    --batch --skip-column-names "$@"
}

start_temporary_server() { # SERVER-COMMAND...
  "$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" --loose-wsrep-on=OFF \
    --skip-log-bin --loose-innodb-buffer-pool-load-at-startup=0 &
  TEMP_PID=$!
  local i
  for i in $(seq 60); do
    if client --database=mysql <<<'SELECT 1' >/dev/null 2>&1; then return 0; fi
    kill -0 "$TEMP_PID" 2>/dev/null || fail "the temporary server exited during initialisation"
    sleep 0.5
  done
  fail "the temporary server did not accept connections within 30 s"
}

stop_temporary_server() {
  mysqladmin --defaults-extra-file=<(ROOT_READY=1 root_passfile) --protocol=socket --socket="$SOCKET" -uroot shutdown
  wait "$TEMP_PID" || true
}

initialise() { # SERVER-COMMAND...
  if [[ -z "$MYSQL_ROOT_PASSWORD" && -z "$MYSQL_ALLOW_EMPTY_PASSWORD" && -z "$MYSQL_RANDOM_ROOT_PASSWORD" ]]; then
    fail "the database is not initialised and no password option is given: set one of MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD and MYSQL_RANDOM_ROOT_PASSWORD"
  fi
  if [[ "$MYSQL_USER" == root ]]; then
    fail "MYSQL_USER=\"root\": MYSQL_USER and MYSQL_PASSWORD are for an ordinary user; the root password is MYSQL_ROOT_PASSWORD"
  fi
  if [[ -n "$MYSQL_USER" && -z "$MYSQL_PASSWORD" ]]; then
    fail "MYSQL_USER is set but MYSQL_PASSWORD is not"
  fi
  ls /docker-entrypoint-initdb.d/ >/dev/null

  note "Initializing database files"
  mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal \
    --skip-test-db --default-time-zone=SYSTEM --skip-log-bin "${@:2}" >/dev/null
  note "Database files initialized"

  start_temporary_server "$@"

  if [[ -n "$MYSQL_RANDOM_ROOT_PASSWORD" ]]; then
    MYSQL_ROOT_PASSWORD="$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)"
    export MYSQL_ROOT_PASSWORD
    note "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
  fi
  local root_pw host db user pw sql
  root_pw="$(sql_literal "$MYSQL_ROOT_PASSWORD")"
  host="$(sql_literal "$MYSQL_ROOT_HOST")"
  # Only root@localhost (and root@MYSQL_ROOT_HOST below), as in MySQL: MariaDB also creates
  # root for the host name and loopback addresses.
  sql="SET @@SESSION.SQL_LOG_BIN=0;
DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\\'', @@hostname, '\\'');
ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_pw';
GRANT ALL ON *.* TO 'root'@'localhost' WITH GRANT OPTION;"
  if [[ -n "$MYSQL_ROOT_HOST" && "$MYSQL_ROOT_HOST" != localhost ]]; then
    sql+="
CREATE USER 'root'@'$host' IDENTIFIED BY '$root_pw';
GRANT ALL ON *.* TO 'root'@'$host' WITH GRANT OPTION;"
  fi
  if [[ -n "$MYSQL_DATABASE" ]]; then
    db="$(sql_name "$MYSQL_DATABASE")"
    note "Creating database $MYSQL_DATABASE"
    sql+="
CREATE DATABASE IF NOT EXISTS \`$db\`;"
  fi
  if [[ -n "$MYSQL_USER" ]]; then
    user="$(sql_literal "$MYSQL_USER")"
    pw="$(sql_literal "$MYSQL_PASSWORD")"
    note "Creating user $MYSQL_USER"
    sql+="
CREATE USER '$user'@'%' IDENTIFIED BY '$pw';"
    if [[ -n "$MYSQL_DATABASE" ]]; then
      note "Giving user $MYSQL_USER access to schema $MYSQL_DATABASE"
      sql+="
GRANT ALL ON \`$(sql_name "${MYSQL_DATABASE//_/\\_}")\`.* TO '$user'@'%';"
    fi
  fi
  sql+="
FLUSH PRIVILEGES;"
  client --database=mysql <<<"$sql"
  ROOT_READY=1

  local f database=()
  [[ -z "$MYSQL_DATABASE" ]] || database=("--database=$MYSQL_DATABASE")
  for f in /docker-entrypoint-initdb.d/*; do
    [[ -e "$f" ]] || continue
    case "$f" in
      *.sh)
        if [[ -x "$f" ]]; then note "running $f"; "$f"; else note "sourcing $f"; . "$f"; fi ;;
      *.sql) note "running $f"; client "${database[@]}" <"$f" ;;
      *.sql.gz) note "running $f"; gunzip -c "$f" | client "${database[@]}" ;;
      *.sql.xz) note "running $f"; xzcat "$f" | client "${database[@]}" ;;
      *) note "ignoring $f" ;;
    esac
  done

  if [[ -n "$MYSQL_ONETIME_PASSWORD" ]]; then
    client --database=mysql <<<"ALTER USER 'root'@'%' PASSWORD EXPIRE;"
  fi
  stop_temporary_server
  note "MySQL init process done. Ready for start up."
}

main() {
  if [[ "${1:-}" == -* ]]; then
    set -- mysqld "$@"
  fi
  if [[ "${1:-}" =~ ^(mysqld|mariadbd)$ ]] && ! only_asks "$@"; then
    note "Entrypoint script for the MySQL stand-in server (MariaDB $("$1" --version | awk '{print $3}')) started."
    DATADIR="$(server_setting datadir "$@")"
    SOCKET="$(server_setting socket "$@")"
    [[ -n "$DATADIR" && -n "$SOCKET" ]] || fail "could not read datadir and socket from the server's configuration"
    if [[ "$(id -u)" == 0 ]]; then
      mkdir -p "$DATADIR" "$(dirname "$SOCKET")"
      find "$DATADIR" "$(dirname "$SOCKET")" \! -user mysql -exec chown mysql: '{}' +
      note "Switching to dedicated user 'mysql'"
      exec gosu mysql "${BASH_SOURCE[0]}" "$@"
    fi
    load_settings
    if [[ -d "$DATADIR/mysql" ]]; then
      note "Database directory appears to contain a database; skipping initialization"
    else
      initialise "$@"
    fi
  fi
  exec "$@"
}

main "$@"
