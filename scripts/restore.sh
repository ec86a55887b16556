#!/usr/bin/env bash
# Restore a backup archive into a stack's running services.
#
#   scripts/restore.sh STACK [ARCHIVE|latest]
#
# It checks the archive (default: the newest) against its manifest, stops the containers that
# write the data (Synapse, the VoiceGrow servers), then the stack's backup container restores
# PostgreSQL, MySQL, Synapse's media and signing key and the bucket's objects; the containers
# are started again and the script waits until they are healthy. Into a freshly deployed stack
# (new, empty volumes) it is the disaster-recovery path: deploy, then restore.
#
# The docker CLI does the work, so DOCKER_HOST selects the engine (e.g. ssh://deploy@vps).
# Environment:
#   PREFIX            name prefix of the stack's containers (default: selfhosted-STACK)
#   RESTORE_TIMEOUT   seconds to wait for the services to be healthy again (default: 600)
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
log() { printf 'restore: %s\n' "$*"; }
die() { printf 'restore: error: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
esac
(($# <= 2)) || { usage >&2; exit 2; }
stack="$1"
selector="${2:-latest}"
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

# Check the archive before anything is stopped; "latest" is pinned to the name it resolves to.
archive="$(docker exec "$backup" backupctl verify "$selector")" ||
  die "archive '$selector' is missing or damaged (see above); nothing was changed"
log "archive $archive matches its manifest"
mapfile -t services < <(docker exec "$backup" backupctl services)

for name in "${services[@]}"; do
  log "stopping $name"
  # A stopped container stays down: its restart policy is unless-stopped.
  docker stop "$name" >/dev/null
done

if ! docker exec "$backup" backupctl restore "$archive"; then
  die "restore of $archive failed (see above); ${services[*]:-nothing} left stopped: fix the cause and run this again, or start them with 'docker start ${services[*]}'"
fi

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

log "restored $archive into stack $stack in $(($(date +%s) - start)) s"
