#!/usr/bin/env bash
# One screen on a deployed stack: each container's health, CPU and memory against its limit, the
# disk, Synapse's client versions endpoint, the last backup and the alerts firing now.
#
#   scripts/status.sh <stack>          e.g. scripts/status.sh prod
#   scripts/status.sh <stack> --check  for cron or an external monitor: one line per check, and
#                                      exit status 1 when any fails (each failure named)
#
# Talks to the stack's Docker engine (DOCKER_HOST when set, as for scripts/restore.sh); PREFIX
# overrides the object prefix (default selfhosted-<stack>). Nothing here changes the stack.
set -euo pipefail

usage="usage: scripts/status.sh <stack> [--check]"
stack="${1:?$usage}"
mode="${2:-screen}"
[[ "$mode" == screen || "$mode" == --check ]] || { echo "$usage" >&2; exit 2; }
prefix="${PREFIX:-selfhosted-$stack}"
# This stack's containers alone: other stacks of the same name (another project on the engine)
# carry the same label under another prefix.
if ! names="$(docker ps -a --filter "label=selfhosted.stack=$stack" --filter "name=^$prefix-" --format '{{.Names}}' | sort)"; then
  [[ "$mode" == --check ]] && printf 'FAILED  engine: no Docker engine answers (DOCKER_HOST=%s)\n' "${DOCKER_HOST:-the local socket}"
  exit 1
fi
if [[ "$mode" == --check && -n "$(docker service ls -q --filter "label=selfhosted.stack=$stack" 2>/dev/null)" ]]; then
  # Swarm keeps its tasks' containers itself, on every node: this engine sees only its own.
  echo "stack $stack runs on Swarm: --check reads one engine's containers; use \`docker service ls\` and monitoring's alerts there" >&2
  exit 2
fi

section() { printf '\n== %s ==\n' "$1"; }
in_container() { docker exec "$prefix-$1" "${@:2}" 2>&1 || printf '(%s not reachable)\n' "$prefix-$1"; }

# --check: what the VoiceGrow guide's healthcheck.sh checks (§7.2.1), for every service of the
# stack, plus what a user would notice first.
failed=0
verdict() { # NAME DETAIL STATUS
  if (($3 == 0)); then printf 'ok      %s\n' "$1"; else printf 'FAILED  %s: %s\n' "$1" "$2"; failed=1; fi
}
answers() { # CONTAINER ARGV...: the command's output, and its status
  docker exec "$1" "${@:2}" 2>&1
}
runs() { grep -qxF "$prefix-$1" <<<"$names"; } # SERVICE: whether the stack has its container
run_checks() {
  local name details state health restart output status code
  if [[ -z "$names" ]]; then
    verdict "stack $stack" "no container of $prefix on this engine" 1
    return
  fi
  for name in $names; do
    details="$(docker inspect -f '{{.State.Status}} {{with index .State "Health"}}{{.Status}}{{else}}none{{end}} {{.HostConfig.RestartPolicy.Name}}' "$name" 2>/dev/null)" || continue
    read -r state health restart <<<"$details"
    # A one-time job (no restart policy) is not a service.
    [[ "$restart" == no ]] && continue
    if [[ "$state" == running && ("$health" == healthy || "$health" == none) ]]; then status=0; else status=1; fi
    verdict "$name" "$state, health $health" "$status"
  done
  if runs synapse; then
    output="$(answers "$prefix-synapse" curl -fsS -m 5 http://localhost:8008/_matrix/client/versions)" && status=0 || status=$?
    verdict "Synapse client API (/_matrix/client/versions)" "$output" "$status"
  fi
  for name in $names; do
    [[ "$name" =~ ^$prefix-voicegrow-server-[0-9]+$ ]] || continue
    output="$(answers "$name" curl -fsS -m 5 -o /dev/null http://localhost:8000/api/v1/health)" && status=0 || status=$?
    verdict "${name#"$prefix-"} HTTP (8000 /api/v1/health)" "$output" "$status"
    # A WebSocket handshake: any HTTP answer shows the port serves (a 101 then holds the
    # connection open until curl's time limit, hence no status check of curl itself).
    code="$(docker exec "$name" curl -s -o /dev/null -w '%{http_code}' -m 3 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
      -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: c3RhdHVzLWNoZWNrLWtleQ==' http://localhost:4399/ 2>/dev/null || true)"
    if [[ "$code" =~ ^[1-5][0-9][0-9]$ ]]; then status=0; else status=1; fi
    verdict "${name#"$prefix-"} WebSocket (4399)" "no answer to a WebSocket handshake" "$status"
  done
  if runs backup; then
    output="$(answers "$prefix-backup" backupctl health)" && status=0 || status=$?
    verdict "last backup" "$output" "$status"
  fi
  if runs monitoring-alertmanager; then
    output="$(answers "$prefix-monitoring-alertmanager" amtool alert query -o simple severity=critical --alertmanager.url=http://127.0.0.1:9093)" && status=0 || status=$?
    if ((status == 0)); then
      # Under a header line, one line per alert, its name first.
      output="$(tail -n +2 <<<"$output" | awk 'NF { print $1 }' | sort -u | paste -sd ' ' -)"
      if [[ -n "$output" ]]; then status=1 output="firing: $output"; fi
    fi
    verdict "critical alerts" "$output" "$status"
  fi
}
if [[ "$mode" == --check ]]; then
  run_checks
  exit "$failed"
fi

section "containers (CPU and memory against each limit)"
printf '%-40s %-10s %-10s %10s %24s\n' NAME STATE HEALTH "CPU/LIMIT" "MEMORY/LIMIT"
for name in $names; do
  # A container removed since the listing (a one-time job, a replacement) is left out.
  details="$(docker inspect -f '{{.State.Status}} {{with index .State "Health"}}{{.Status}}{{else}}-{{end}} {{.HostConfig.NanoCpus}}' "$name" 2>/dev/null)" || continue
  read -r state health cpus <<<"$details"
  if [[ "$state" == running ]]; then
    stats="$(docker stats --no-stream --format '{{.CPUPerc}} {{.MemUsage}}' "$name" 2>/dev/null | sed 's| / |/|')" || continue
    read -r cpu memory <<<"$stats"
    # docker stats counts one core as 100 %: against the limit it is that divided by the limit's cores.
    cpu="$(awk -v used="${cpu%\%}" -v limit="$cpus" 'BEGIN { if (limit > 0) printf "%.0f%%", used / (limit / 1e9); else printf "%s%%", used }')"
  else
    cpu=- memory=-
  fi
  printf '%-40s %-10s %-10s %10s %24s\n' "$name" "$state" "$health" "$cpu" "$memory"
done

section "disk"
in_container monitoring-node-exporter df -h /host

section "Synapse client versions endpoint"
in_container monitoring-blackbox-exporter wget -q -T 5 -O - http://synapse:8008/_matrix/client/versions
echo

section "last backup"
in_container backup backupctl status

section "firing alerts"
in_container monitoring-alertmanager amtool alert query --alertmanager.url=http://127.0.0.1:9093
