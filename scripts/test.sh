#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine (as root) and runs all three layers:
# unit tests under Pulumi mocks, rendered configuration checked by the real software, and
# end-to-end tests that apply the program to a Docker engine this script starts if none runs.
#
#   scripts/test.sh [PYTEST ARGS...]     e.g. scripts/test.sh -m "not e2e" for the fast layers only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .cache
figures=.cache/e2e-figures.txt
: >"$figures"

# The real software that reads the rendered configuration, and debootstrap for the stand-in images.
packages=()
command -v nginx >/dev/null || packages+=(nginx-light)
command -v redis-server >/dev/null || packages+=(redis-server)
command -v mariadbd >/dev/null || packages+=(mariadb-server)
command -v debootstrap >/dev/null || packages+=(debootstrap)
command -v rclone >/dev/null || packages+=(rclone)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
if ((${#packages[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
bash scripts/setup-python.sh

bash tests/e2e/engine.sh start
trap 'bash tests/e2e/engine.sh stop' EXIT
echo "pass first-build" >>"$figures"
E2E_FIGURES="$PWD/$figures" bash tests/e2e/images/build.sh
# Again, to measure the cached build a second run of the tests pays.
echo "pass cached-rebuild" >>"$figures"
E2E_FIGURES="$PWD/$figures" bash tests/e2e/images/build.sh >/dev/null
echo "pass tests" >>"$figures"

status=0
.venv/bin/python -m pytest "$@" || status=$?

echo
echo "== figures =="
.venv/bin/python -m tests.figures "$figures"
exit "$status"
