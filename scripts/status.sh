#!/usr/bin/env bash
# One screen on a deployed stack: each container's health, CPU and memory against its limit, the
# disk, Synapse's client versions endpoint, the last backup and the alerts firing now.
#
#   scripts/status.sh <stack>        e.g. scripts/status.sh prod
#
# Talks to the stack's Docker engine (DOCKER_HOST when set, as for scripts/restore.sh); PREFIX
# overrides the object prefix (default selfhosted-<stack>). Nothing here changes the stack.
set -euo pipefail

stack="${1:?usage: scripts/status.sh <stack>}"
prefix="${PREFIX:-selfhosted-$stack}"

section() { printf '\n== %s ==\n' "$1"; }
in_container() { docker exec "$prefix-$1" "${@:2}" 2>&1 || printf '(%s not reachable)\n' "$prefix-$1"; }

section "containers (CPU and memory against each limit)"
# This stack's containers alone: other stacks of the same name (another project on the engine)
# carry the same label under another prefix.
names="$(docker ps -a --filter "label=selfhosted.stack=$stack" --filter "name=^$prefix-" --format '{{.Names}}' | sort)"
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
