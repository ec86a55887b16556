#!/usr/bin/env bash
# Sends a test alert through the stack's Alertmanager to every receiver it has, and says which
# delivered it: each integration's request counters are read before and after (other alerts
# notified in the same minute count too: run it when nothing else fires).
#
#   scripts/alert-test.sh <stack>        e.g. scripts/alert-test.sh prod
#
# Talks to the stack's Docker engine (DOCKER_HOST when set, as for scripts/status.sh); PREFIX
# overrides the object prefix (default selfhosted-<stack>); WAIT_SECONDS (default 120) is how long
# to wait for each delivery. The alert is critical, named AlertTest, and resolves itself after
# five minutes (receivers that send resolved notices get one then). Exits non-zero when no
# receiver is configured or one did not deliver.
set -euo pipefail

stack="${1:?usage: scripts/alert-test.sh <stack>}"
prefix="${PREFIX:-selfhosted-$stack}"
wait_seconds="${WAIT_SECONDS:-120}"
container="$prefix-monitoring-alertmanager"
url=http://127.0.0.1:9093

in_alertmanager() { docker exec "$container" "$@"; }

# Alertmanager's integrations that the stack's receivers use (the file holds secrets: only the
# integration names are read from it).
integrations="$(in_alertmanager sed -n 's/^ *\(email\|wechat\|webhook\)_configs:.*/\1/p' /etc/alertmanager/alertmanager.yml | sort -u)"
if [[ -z "$integrations" ]]; then
  echo "no receiver configured: set monitoring.receivers (and its settings) for stack $stack" >&2
  exit 1
fi

# The sum of a counter over every series of one integration (its reasons, if any).
counter() {
  in_alertmanager wget -q -T 5 -O - "$url/metrics" |
    awk -v metric="$1" -v integration="integration=\"$2\"" \
      'index($1, metric "{") == 1 && index($1, integration) { sum += $2 } END { printf "%d\n", sum }'
}

declare -A sent_before failed_before
for integration in $integrations; do
  sent_before[$integration]="$(counter alertmanager_notification_requests_total "$integration")"
  failed_before[$integration]="$(counter alertmanager_notification_requests_failed_total "$integration")"
done

ends="$(date -u -d '+5 minutes' +%Y-%m-%dT%H:%M:%SZ)"
# A service label of its own puts each test in a new group, sent after group_wait (30 s).
in_alertmanager amtool alert add AlertTest severity=critical service="alert-test-$(date +%s)" stack="$stack" \
  --annotation=summary="Test alert of stack $stack, sent by scripts/alert-test.sh: if you read this, alerts reach you." \
  --end="$ends" --alertmanager.url="$url" >/dev/null
echo "test alert sent to $container; waiting for each receiver (Alertmanager groups for 30 s first)"

status=0
deadline=$((SECONDS + wait_seconds))
for integration in $integrations; do
  verdict="no answer within ${wait_seconds} s"
  while ((SECONDS < deadline)); do
    sent=$(($(counter alertmanager_notification_requests_total "$integration") - sent_before[$integration]))
    failed=$(($(counter alertmanager_notification_requests_failed_total "$integration") - failed_before[$integration]))
    # A failed request counts in both counters: delivered means more requests than failures.
    if ((sent > failed)); then verdict=delivered; break; fi
    if ((failed > 0)); then verdict="failed (${failed} attempt(s); Alertmanager's log says why: docker logs $container)"; break; fi
    sleep 2
  done
  echo "$integration: $verdict"
  [[ "$verdict" == delivered ]] || status=1
done
exit "$status"
