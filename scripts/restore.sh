#!/usr/bin/env bash
# Restore a backup archive into a stack's running services.
#
#   scripts/restore.sh STACK [ARCHIVE|latest] [--only synapse|mysql|bucket]
#
# It checks the archive (default: the newest) against its manifest, stops the containers that
# write the data (Synapse, the VoiceGrow servers), then the stack's backup container restores
# PostgreSQL, MySQL, Synapse's media and signing key and the bucket's objects; the containers
# are started again and the script waits until they are healthy. Into a freshly deployed stack
# (new, empty volumes) it is the disaster-recovery path: deploy, then restore.
#
# --only restores one part and leaves the others as they are: synapse (its database, media and
# signing key; only Synapse is stopped), mysql or bucket (only the VoiceGrow servers are
# stopped). With `latest`, each part comes from the newest archive that holds it (a part with a
# schedule of its own, backup.part_schedules, is in other archives than the rest).
#
# The docker CLI does the work, so DOCKER_HOST selects the engine (e.g. ssh://deploy@vps).
# Environment:
#   PREFIX            name prefix of the stack's containers (default: selfhosted-STACK)
#   RESTORE_TIMEOUT   seconds to wait for the services to be healthy again (default: 600)
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
log() { printf 'restore: %s\n' "$*"; }
die() { printf 'restore: error: %s\n' "$*" >&2; exit 1; }

positional=()
only=()
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --only)
      [[ "${2:-}" =~ ^(synapse|mysql|bucket)$ ]] || die "--only takes synapse, mysql or bucket, got '${2:-}'"
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
state="$(docker inspect -f '{{.State.Status}}' "$backup" 2>/dev/null)" ||
  die "no container $backup on ${DOCKER_HOST:-the local engine}: is backup enabled in stack '$stack' (and PREFIX right)?"
[[ "$state" == running ]] || die "$backup is $state: start it with 'docker start $backup' (or deploy the stack)"

start="$(date +%s)"

# Check the archives before anything is stopped; "latest" is pinned to the names it resolves to.
# One line per archive: its name and the parts it restores (e.g. "backup-….tar synapse,mysql").
plan="$(docker exec "$backup" backupctl plan "$selector" "${only[@]}")" ||
  die "archive '$selector' is missing, damaged or lacks the part asked for (see above); nothing was changed"
mapfile -t steps <<<"$plan"
for step in "${steps[@]}"; do
  log "archive ${step% *} matches its manifest (${step#* })"
done
mapfile -t services < <(docker exec "$backup" backupctl services "${only[@]}")

for name in "${services[@]}"; do
  log "stopping $name"
  # A stopped container stays down: its restart policy is unless-stopped.
  docker stop "$name" >/dev/null
done

for step in "${steps[@]}"; do
  archive="${step% *}"
  if ! docker exec "$backup" backupctl restore "$archive" --only "${step#* }"; then
    die "restore of $archive failed (see above); ${services[*]:-nothing} left stopped: fix the cause and run this again, or start them with 'docker start ${services[*]}'"
  fi
done

for name in "${services[@]}"; do
  log "starting $name"
  docker start "$name" >/dev/null
done

# Wait until every restarted container reports healthy (or runs, when it has no health check).
deadline=$(($(date +%s) + timeout))
for name in "${services[@]}"; do
  while :; do
    status="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$name")"
    [[ "$status" == healthy || "$status" == running ]] && break
    (($(date +%s) < deadline)) || die "$name is '$status' ${timeout} s after the restore (see 'docker logs $name')"
    sleep 2
  done
  log "$name is $status"
done

log "restored ${steps[*]} into stack $stack in $(($(date +%s) - start)) s"
