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
# hide what a fresh machine would show. The bridge (named within Linux's 15 characters), the
# address pool (10.100.0.0/16 to 10.199.0.0/16) and the offset of the tests' host ports (1000 to
# 10000) are one per clone, so that clones can test at the same time.
engine="$PWD/.cache/engine"
clone="$(printf '%s' "$PWD" | sha256sum | cut -c1-8)"
bridge="e2e-$clone"
export E2E_ENGINE_DIR="$engine" DOCKER_HOST="unix://$engine/docker.sock"
export E2E_PORT_OFFSET=$(((16#$clone % 10 + 1) * 1000))
address_pool="10.$((16#$clone % 100 + 100)).0.0/16"
# Stops the engine (also one left by an interrupted run) and removes its bridge, what it left
# mounted (network namespaces, and image layers if it was killed) and its data; its log stays.
stop_engine() {
  bash tests/e2e/engine.sh stop
  ip link delete "$bridge" 2>/dev/null || true
  findmnt -rn -o TARGET | awk -v root="$engine/" 'index($0, root) == 1' | sort -r | xargs -r -n1 umount --lazy
  rm -rf "$engine/data" "$engine/exec"
}
stop_engine
trap stop_engine EXIT
rm -rf "$engine"
mkdir -p "$engine"
echo '{}' >"$engine/daemon.json"
ip link add "$bridge" type bridge
E2E_DOCKERD_ARGS="-H $DOCKER_HOST --data-root $engine/data --exec-root $engine/exec --pidfile $engine/docker.pid \
--config-file $engine/daemon.json -b $bridge --default-address-pool base=$address_pool,size=24" \
  bash tests/e2e/engine.sh start
echo "pass first-build" >>"$figures"
E2E_FIGURES="$PWD/$figures" bash tests/e2e/images/build.sh
# Again, to measure what build.sh costs when the images are there (the image tests call it).
echo "pass cached-rebuild" >>"$figures"
E2E_FIGURES="$PWD/$figures" bash tests/e2e/images/build.sh >/dev/null
echo "pass tests" >>"$figures"

# Test files run in parallel (E2E_WORKERS processes, each file on one): an end-to-end module
# mostly waits for its containers, and each has its own names and host ports.
status=0
.venv/bin/python -m pytest -n "${E2E_WORKERS:-3}" --dist loadfile "$@" || status=$?

echo
echo "== figures =="
.venv/bin/python -m tests.figures "$figures"
exit "$status"
