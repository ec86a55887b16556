#!/usr/bin/env bash
# Sets up and deploys one stack (default: dev) to the Docker engine, with Pulumi's local state backend.
#
#   scripts/deploy.sh [STACK] [PULUMI UP ARGS...]     e.g. scripts/deploy.sh dev, scripts/deploy.sh prod --diff
#
# Needs the Pulumi CLI and a Docker engine (local, or set `docker.host` in the stack file).
# The stack's secrets are encrypted with a passphrase: PULUMI_CONFIG_PASSPHRASE or
# PULUMI_CONFIG_PASSPHRASE_FILE if set, otherwise one generated once per stack in
# ~/.config/selfhosted/<stack>.passphrase (keep it: it decrypts the generated passwords).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
stack="${1:-dev}"
shift || true

command -v pulumi >/dev/null || { echo "deploy: the Pulumi CLI is missing: https://www.pulumi.com/docs/install/" >&2; exit 1; }
command -v docker >/dev/null || { echo "deploy: the docker client is missing (the deploy runs 'docker exec' for first-run setup)" >&2; exit 1; }
[[ -f "Pulumi.$stack.yaml" ]] || { echo "deploy: no Pulumi.$stack.yaml: create it from Pulumi.dev.yaml" >&2; exit 1; }

bash scripts/setup-python.sh

if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  passphrase_file="$HOME/.config/selfhosted/$stack.passphrase"
  if [[ ! -f "$passphrase_file" ]]; then
    mkdir -p "$(dirname "$passphrase_file")"
    (umask 077 && head -c 32 /dev/urandom | base64 >"$passphrase_file")
    echo "deploy: generated the secrets passphrase of stack $stack in $passphrase_file"
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$passphrase_file"
fi

# The local state backend (~/.pulumi), unless the operator chose another one.
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://~}"
pulumi stack select --create "$stack"
pulumi up --yes --stack "$stack" "$@"
pulumi stack output --stack "$stack"
