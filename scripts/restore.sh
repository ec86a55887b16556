#!/usr/bin/env bash
# Restore a backup archive into a stack's running services.
#
#   scripts/restore.sh STACK [ARCHIVE|latest] [--only synapse|media|mysql|bucket] [--offsite]
#                        [--without-safety-copy]
#
# It checks the archive (default: the newest) against its manifest, stops the containers that
# write the data (Synapse, the VoiceGrow servers), then the stack's backup container restores
# PostgreSQL, MySQL, Synapse's signing key and media and the bucket's objects; the containers
# are started again and the script waits until they are healthy. Into a freshly deployed stack
# (new, empty volumes) it is the disaster-recovery path: deploy, then restore.
#
# Before it replaces anything, with the services stopped, the backup container saves what the
# restore replaces in an archive of its own, backup-...Z-before-restore.tar, and says its name:
# restoring that archive goes back. If that copy cannot be made, nothing is replaced.
# --without-safety-copy skips it (no way back), e.g. when the database to replace is broken.
#
# --only restores one part and leaves the others as they are: synapse (its database and signing
# key) or media (its media store), for which only Synapse is stopped, mysql or bucket (only the
# VoiceGrow servers are stopped). With `latest`, each part comes from the newest archive that
# holds it (a part with a schedule of its own, backup.part_schedules, is in other archives than
# the rest). An archive of the old layout, with one synapse-data.tar.gz, serves synapse and media.
#
# --offsite first fetches the archive (`latest`: the stack's newest offsite one) from the offsite
# copy into the backup container's archives, decrypting it, and checks it; then restores it as
# above. For a host whose archives are gone: deploy, then restore with --offsite.
#
# The docker CLI does the work, so DOCKER_HOST selects the engine (e.g. ssh://deploy@vps).
# With `orchestrator: swarm` it is the data node's engine (the stack's docker.host): there the
# parts are services, stopped by scaling them to no task and started again at their replicas.
# Environment:
#   PREFIX            name prefix of the stack's containers (default: selfhosted-STACK)
#   RESTORE_TIMEOUT   seconds to wait for the services to be healthy again (default: 600)
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
log() { printf 'restore: %s\n' "$*"; }
die() { printf 'restore: error: %s\n' "$*" >&2; exit 1; }
# Once a `docker exec` command has ended, the engine copies its output for at most 2 seconds: on a
# busy host an answer can come back empty. Each answer the restore acts on is checked for that.
lost_output() { die "the engine returned no output for '$1' (a busy host can lose a docker exec's output); nothing was changed: run the restore again"; }

positional=()
only=()
offsite=false
safety=()
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --offsite) offsite=true; shift ;;
    --without-safety-copy) safety=(--without-safety-copy); shift ;;
    --only)
      [[ "${2:-}" =~ ^(synapse|media|mysql|bucket)$ ]] || die "--only takes synapse, media, mysql or bucket, got '${2:-}'"
      only=(--only "$2")
      shift 2
      ;;
    *) positional+=("$1"); shift ;;
  esac
done
((${#positional[@]} >= 1 && ${#positional[@]} <= 2)) || { usage >&2; exit 2; }
stack="${positional[0]}"
selector="${positional[1]:-latest}"
[[ "$stack" =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "STACK must be a stack name like 'prod', got '$stack'"
prefix="${PREFIX:-selfhosted-$stack}"
timeout="${RESTORE_TIMEOUT:-600}"
[[ "$timeout" =~ ^[0-9]+$ ]] || die "RESTORE_TIMEOUT must be a number of seconds, got '$timeout'"
backup="$prefix-backup"

command -v docker >/dev/null || die "the docker command is missing"
engine="${DOCKER_HOST:-the local engine}"
swarm=false
if docker service inspect "$backup" >/dev/null 2>&1; then swarm=true; fi

# The container commands run in: the backup container, or on Swarm its service's task on this engine.
if $swarm; then
  job="$(docker ps -q --filter "label=com.docker.swarm.service.name=$backup" --filter status=running | head -n 1)"
  [[ -n "$job" ]] || die "service $backup has no running task on $engine: DOCKER_HOST must be the stack's data node (docker.host), see 'docker service ps $backup'"
else
  state="$(docker inspect -f '{{.State.Status}}' "$backup" 2>/dev/null)" ||
    die "no container $backup on $engine: is backup enabled in stack '$stack' (and PREFIX right)?"
  [[ "$state" == running ]] || die "$backup is $state: start it with 'docker start $backup' (or deploy the stack)"
  job="$backup"
fi

start="$(date +%s)"

if $offsite; then
  selector="$(docker exec "$job" backupctl fetch "$selector")" ||
    die "archive '${positional[1]:-latest}' could not be fetched from the offsite copy (see above); nothing was changed"
  [[ -n "$selector" ]] || lost_output "backupctl fetch"
  log "fetched $selector from the offsite copy"
fi

# Check the archives before anything is stopped; "latest" is pinned to the names it resolves to.
# One line per archive: its name and the parts it restores (e.g. "backup-….tar synapse,mysql").
plan="$(docker exec "$job" backupctl plan "$selector" "${only[@]}")" ||
  die "archive '$selector' is missing, damaged or lacks the part asked for (see above); nothing was changed (an archive kept only offsite: add --offsite)"
[[ -n "$plan" ]] || lost_output "backupctl plan"
mapfile -t steps <<<"$plan"
for step in "${steps[@]}"; do
  log "archive ${step% *} matches its manifest (${step#* })"
done
mapfile -t services < <(docker exec "$job" backupctl services "${only[@]}")
((${#services[@]})) || lost_output "backupctl services"

# How many of service $1's tasks are in one of the states $2 (e.g. "Running|Starting"); with $3,
# only those Swarm wants running.
tasks_in() {
  docker service ps ${3:+--filter desired-state=running} --format '{{.CurrentState}}' "$1" | grep -cE "^($2) " || true
}
deadline=$(($(date +%s) + timeout))

# A service's replicas, read before it is scaled down, to start it again as it was.
declare -A replicas=()
for name in "${services[@]}"; do
  log "stopping $name"
  if $swarm; then
    replicas[$name]="$(docker service inspect -f '{{.Spec.Mode.Replicated.Replicas}}' "$name")"
    # Detached: the CLI's own wait adds the service's update monitor period (40 s) after its tasks stop.
    docker service scale --detach "$name=0" >/dev/null
  else
    # A stopped container stays down: its restart policy is unless-stopped.
    docker stop "$name" >/dev/null
  fi
done
start_command() {
  if $swarm; then
    for name in "${services[@]}"; do printf "docker service scale %s=%s; " "$name" "${replicas[$name]}"; done
  else
    printf 'docker start %s' "${services[*]}"
  fi
}
if $swarm; then
  for name in "${services[@]}"; do
    while (($(tasks_in "$name" "Running|Starting|Preparing|Assigned|Accepted|Ready|Pending|New") > 0)); do
      (($(date +%s) < deadline)) || die "$name still has a task ${timeout} s after it was scaled to 0 (see 'docker service ps $name'); nothing was restored: start them again with '$(start_command)'"
      sleep 1
    done
  done
fi

for step in "${steps[@]}"; do
  archive="${step% *}"
  if ! docker exec "$job" backupctl restore "$archive" --only "${step#* }" "${safety[@]}"; then
    die "restore of $archive failed (see above); ${services[*]:-nothing} left stopped: fix the cause and run this again, or start them with '$(start_command)'"
  fi
done

for name in "${services[@]}"; do
  log "starting $name"
  if $swarm; then
    # Detached: the wait below looks at its tasks.
    docker service scale --detach "$name=${replicas[$name]}" >/dev/null
  else
    docker start "$name" >/dev/null
  fi
done

# Wait until every restarted container reports healthy (or runs, when it has no health check);
# on Swarm, until each of the service's tasks runs (a task with a health check runs once healthy),
# on whichever node it was placed.
status_of() {
  if $swarm; then
    local running
    running="$(tasks_in "$1" Running wanted)"
    if ((running == ${replicas[$1]})); then echo running; else echo "starting ($running of ${replicas[$1]} tasks running)"; fi
  else
    docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1"
  fi
}
logs_command() { if $swarm; then echo "docker service logs $1"; else echo "docker logs $1"; fi; }
deadline=$(($(date +%s) + timeout))
for name in "${services[@]}"; do
  while :; do
    status="$(status_of "$name")"
    [[ "$status" == healthy || "$status" == running ]] && break
    (($(date +%s) < deadline)) || die "$name is '$status' ${timeout} s after the restore (see '$(logs_command "$name")')"
    sleep 2
  done
  log "$name is $status"
done

log "restored ${steps[*]} into stack $stack in $(($(date +%s) - start)) s"
