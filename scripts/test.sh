#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine (as root) and runs all three layers:
# unit tests under Pulumi mocks, rendered configuration checked by the real software, and
# end-to-end tests that apply the program to a Docker engine of this script's own, started from
# an empty data root every run.
#
#   scripts/test.sh [PYTEST ARGS...]     e.g. scripts/test.sh -m "not e2e" for the fast layers only
#
# E2E_WORKERS (default 3) test processes run the test files in parallel; -n 0 runs them in one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .cache
figures=.cache/e2e-figures.txt
: >"$figures"

# The real software that reads the rendered configuration, debootstrap for the stand-in images, and
# the SSH client the harness sends remote commands with.
packages=()
command -v nginx >/dev/null || packages+=(nginx-light)
command -v redis-server >/dev/null || packages+=(redis-server)
command -v mariadbd >/dev/null || packages+=(mariadb-server)
command -v debootstrap >/dev/null || packages+=(debootstrap)
command -v rclone >/dev/null || packages+=(rclone)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
command -v ip >/dev/null || packages+=(iproute2)
command -v ssh >/dev/null || packages+=(openssh-client)
if ((${#packages[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
bash scripts/setup-python.sh
bash scripts/setup-node.sh

# The engine of the end-to-end tests is this script's own, beside any other on the machine (its
# own socket, exec root, pidfile, configuration, bridge and address pool), and its data root is
# emptied before every run: no image, network or volume a previous run or another engine left can
# hide what a fresh machine would show. The bridges (named within Linux's 15 characters), the
# address pool (10.100.0.0/16 to 10.199.0.0/16) and the offset of the tests' host ports (1000 to
# 10000) are one per clone, so that clones can test at the same time.
clone="$(printf '%s' "$PWD" | sha256sum | cut -c1-8)"
export E2E_PORT_OFFSET=$(((16#$clone % 10 + 1) * 1000))
# Two engines: the tests' own, and one for the Swarm tests, whose `swarm init` and `swarm leave`
# reconfigure the engine's networking and disturb the name lookups of other tests' containers.
# Each has its own bridge (e2e-/e2s-<clone>) and half of the clone's address pool.
pool_octet=$((16#$clone % 100 + 100))
engine="$PWD/.cache/engine"
swarm_engine="$PWD/.cache/swarm-engine"
# dockerd leaves its iptables rules behind when it stops. A masquerading rule of an address pool
# outlives its engine and catches the next engine on that pool (another clone whose path hashes to
# the same pool, or this one): its containers' traffic to each other then arrives from the
# bridge's address instead of the sender's. So every rule that names the pool's addresses or the
# clone's bridges goes when an engine stops, and before one starts.
forget_rules() {
  command -v iptables-save >/dev/null || return 0
  local table rule
  for table in nat filter; do
    { iptables-save -t "$table" | grep -E -- "^-A .*( 10\.$pool_octet\.| e2[es]-$clone( |$))" || true; } | while read -r rule; do
      eval "iptables -t $table -D ${rule#-A }"
    done
  done
}
# Stops an engine (also one left by an interrupted run) and removes its bridge, what it left
# mounted (network namespaces, and image layers if it was killed) and its data; its log stays.
stop_engine() {
  local directory="$1" bridge="$2"
  E2E_ENGINE_DIR="$directory" DOCKER_HOST="unix://$directory/docker.sock" bash tests/e2e/engine.sh stop
  ip link delete "$bridge" 2>/dev/null || true
  findmnt -rn -o TARGET | awk -v root="$directory/" 'index($0, root) == 1' | sort -r | xargs -r -n1 umount --lazy
  rm -rf "$directory/data" "$directory/exec"
}
start_engine() {
  local directory="$1" bridge="$2" pool="$3"
  rm -rf "$directory"
  mkdir -p "$directory"
  echo '{}' >"$directory/daemon.json"
  ip link add "$bridge" type bridge
  E2E_ENGINE_DIR="$directory" DOCKER_HOST="unix://$directory/docker.sock" \
  E2E_DOCKERD_ARGS="-H unix://$directory/docker.sock --data-root $directory/data --exec-root $directory/exec \
--pidfile $directory/docker.pid --config-file $directory/daemon.json -b $bridge --default-address-pool base=$pool,size=24" \
    bash tests/e2e/engine.sh start
}
stop_engines() {
  stop_engine "$engine" "e2e-$clone"
  stop_engine "$swarm_engine" "e2s-$clone"
  forget_rules
}
stop_engines
trap stop_engines EXIT
start_engine "$engine" "e2e-$clone" "10.$pool_octet.0.0/17"
start_engine "$swarm_engine" "e2s-$clone" "10.$pool_octet.128.0/17"
export E2E_ENGINE_DIR="$engine" DOCKER_HOST="unix://$engine/docker.sock"
# Without arguments (as CI runs it), the unit and rendered tests, which need no image, run while
# the images are built, and on beside the end-to-end tests; with arguments, one pytest runs what
# they select.
fast_run=
if (($# == 0)); then
  .venv/bin/python -m pytest -p no:cacheprovider -n 2 -m "not e2e" --durations=10 >.cache/fast-tests.log 2>&1 &
  fast_run=$!
fi
echo "pass first-build" >>"$figures"
E2E_FIGURES="$PWD/$figures" bash tests/e2e/images/build.sh
# Again, to measure what build.sh costs when the images are there (the image tests call it).
echo "pass cached-rebuild" >>"$figures"
E2E_FIGURES="$PWD/$figures" bash tests/e2e/images/build.sh >/dev/null
echo "pass tests" >>"$figures"

# The Swarm test files, on their engine, at the same time as the others; the images they run are
# copied over first.
swarm_tests=(tests/e2e/harness/test_swarm_e2e.py tests/e2e/test_swarm_e2e.py tests/e2e/test_swarm_two_nodes_e2e.py)
# Options only: test files named on the command line run on the tests' engine, not again here.
swarm_options=()
for argument in "$@"; do [[ -e "${argument%%::*}" ]] || swarm_options+=("$argument"); done
(
  docker save $(docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -v -e '<none>' -e certbot -e pebble -e vps -e postgres:17) |
    DOCKER_HOST="unix://$swarm_engine/docker.sock" docker load >/dev/null
  E2E_ENGINE_DIR="$swarm_engine" DOCKER_HOST="unix://$swarm_engine/docker.sock" \
    .venv/bin/python -m pytest -p no:cacheprovider "${swarm_options[@]}" "${swarm_tests[@]}"
) >.cache/swarm-tests.log 2>&1 &
swarm_run=$!

# The other test files run in parallel (E2E_WORKERS processes, each file on one): an end-to-end
# module mostly waits for its containers, and each has its own names and host ports.
status=0
selection=("$@")
if [[ -n "$fast_run" ]]; then selection=(-m e2e); fi
.venv/bin/python -m pytest -n "${E2E_WORKERS:-3}" --dist loadfile --durations=10 "${swarm_tests[@]/#/--ignore=}" "${selection[@]}" 2>&1 |
  tee .cache/e2e-tests.log || status=$?
if [[ -n "$fast_run" ]]; then
  fast_status=0
  wait "$fast_run" || fast_status=$?
  echo
  echo "== unit and rendered tests (beside the others) =="
  tail -n 40 .cache/fast-tests.log
  if ((fast_status != 0 && status == 0)); then status=$fast_status; fi
fi
swarm_status=0
wait "$swarm_run" || swarm_status=$?
echo
echo "== Swarm tests (own engine) =="
tail -n 30 .cache/swarm-tests.log
# No Swarm test selected (e.g. -m "not e2e"): pytest's 5 is not a failure.
if ((swarm_status != 0 && swarm_status != 5 && status == 0)); then status=$swarm_status; fi

echo
echo "== figures =="
.venv/bin/python -m tests.figures "$figures"

# Every test takes away what it deployed: a container, service or network left in either engine
# is a teardown that failed (a real `pulumi destroy` would leave it too), named here.
left_behind() {
  docker ps -a --format 'container {{.Names}} ({{.Status}})'
  docker network ls --filter type=custom --format 'network {{.Name}}' | grep -v -x -e 'network docker_gwbridge' -e 'network ingress' || true
  if [[ "$(docker info --format '{{.Swarm.LocalNodeState}}')" == active ]]; then docker service ls --format 'service {{.Name}}'; fi
}
leftovers="$(left_behind; DOCKER_HOST="unix://$swarm_engine/docker.sock" left_behind | sed 's/^/swarm engine: /')"
if [[ -n "$leftovers" ]]; then
  echo
  echo "== left behind by the tests =="
  echo "$leftovers"
  if ((status == 0)); then status=1; fi
fi

# When something failed: what the machine had left, and what the engines complained of.
if ((status != 0)); then
  echo
  echo "== the machine and its engines, after a failure =="
  df -h . | tail -n 1
  free -m | sed -n 2p
  for log in "$engine/dockerd.log" "$swarm_engine/dockerd.log"; do
    echo "$log (errors, last 10):"
    grep -E 'level=(error|fatal)|panic' "$log" | tail -n 10 || true
  done
  echo
  echo "== what failed, in all three runs =="
  grep -h -E '^(FAILED|ERROR) ' .cache/e2e-tests.log .cache/fast-tests.log .cache/swarm-tests.log 2>/dev/null | cut -c1-400 || true
fi

exit "$status"
