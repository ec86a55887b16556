#!/usr/bin/env bash
# Make a Docker engine available for the end-to-end tests, and take it away again.
#
#   engine.sh start    use the running engine, or install Debian's docker.io (if dockerd
#                      is missing) and start dockerd in the background
#   engine.sh stop     stop the engine, but only if "engine.sh start" started it
#   engine.sh status   say whether an engine answers and who started it
#
# Runs as root, unattended. State lives in the repository's git-ignored .cache/ directory, or in
# E2E_ENGINE_DIR:
#   dockerd.pid   pid of the dockerd this script started (absent otherwise)
#   dockerd.log   its log
#
# Environment:
#   E2E_ENGINE_DIR       directory of the state above (default .cache/); one per engine, so that
#                        stopping one never stops another
#   E2E_ENGINE_TIMEOUT   seconds to wait for "docker info" after starting dockerd (default 60)
#   E2E_DOCKERD_ARGS     extra arguments for dockerd, split on spaces (default none). With its own
#                        -H socket, --data-root, --exec-root, --pidfile and -b BRIDGE (a bridge
#                        interface of its own), and DOCKER_HOST set to that socket, this starts a
#                        separate engine beside another one. Never --bridge=none there: dockerd
#                        then deletes the docker0 interface that the other engine's default
#                        network uses.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${E2E_ENGINE_DIR:-$ROOT/.cache}"
PIDFILE="$STATE/dockerd.pid"
LOGFILE="$STATE/dockerd.log"
LOCKFILE="$STATE/engine.lock"
TIMEOUT="${E2E_ENGINE_TIMEOUT:-60}"

log() { printf 'engine: %s\n' "$*"; }
die() { printf 'engine: error: %s\n' "$*" >&2; exit 1; }

engine_answers() { docker info >/dev/null 2>&1; }

# Pid recorded by this script, if that process is still a running dockerd.
our_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == dockerd ]] || return 1
  printf '%s\n' "$pid"
}

install_engine() {
  log "dockerd not found: installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null \
    || die "apt-get install docker.io failed"
  command -v dockerd >/dev/null || die "docker.io installed but dockerd is still not on PATH"
}

start() {
  if engine_answers; then
    log "an engine was already running; nothing to do"
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "starting dockerd needs root"
  command -v dockerd >/dev/null || install_engine
  command -v docker >/dev/null || die "the docker client is missing (package docker.io provides it)"

  local pid
  if pid="$(our_pid)"; then
    log "dockerd (pid $pid) started earlier by this script is not answering yet"
  else
    rm -f "$PIDFILE"
    log "starting dockerd, log in $LOGFILE"
    local extra=()
    read -r -a extra <<<"${E2E_DOCKERD_ARGS:-}"
    # setsid: the engine must outlive this script and not receive its terminal's signals;
    # 9>&-: nor hold this script's lock.
    setsid dockerd "${extra[@]}" >>"$LOGFILE" 2>&1 </dev/null 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
  fi

  local waited=0
  until engine_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      tail -n 20 "$LOGFILE" >&2 || true
      die "dockerd exited before answering (log: $LOGFILE)"
    fi
    if (( waited >= TIMEOUT )); then
      tail -n 20 "$LOGFILE" >&2 || true
      die "dockerd (pid $pid) did not answer 'docker info' within ${TIMEOUT}s (log: $LOGFILE)"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "engine ready after ${waited}s (dockerd pid $pid, started by this script)"
}

stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PIDFILE"
    if engine_answers; then
      log "the running engine was not started by this script; leaving it alone"
    else
      log "no engine started by this script is running"
    fi
    return 0
  fi
  log "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if (( waited >= TIMEOUT )); then
      die "dockerd (pid $pid) did not stop within ${TIMEOUT}s"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  rm -f "$PIDFILE"
  log "engine stopped"
}

status() {
  local pid
  if engine_answers; then
    if pid="$(our_pid)"; then
      log "engine running (dockerd pid $pid, started by this script)"
    else
      log "engine running (not started by this script)"
    fi
  else
    log "no engine answers"
    return 1
  fi
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    start | stop | status) ;;
    *) die "usage: $0 start|stop|status" ;;
  esac
  mkdir -p "$STATE"
  # One start/stop at a time, so parallel callers do not start two engines.
  exec 9>"$LOCKFILE"
  flock 9
  "$cmd"
}

main "$@"
