#!/usr/bin/env bash
# From a bare Debian or Ubuntu machine to a deployed stack (default: dev), with Pulumi's local state backend
# or the team's (PULUMI_BACKEND_URL).
#
#   scripts/deploy.sh [STACK] [PULUMI UP ARGS...]   e.g. scripts/deploy.sh dev, scripts/deploy.sh prod --diff
#   scripts/deploy.sh STACK --check                 only the preflight checks of this machine
#
# Installs what is missing (scripts/prerequisites.sh: the Docker engine from the distribution's
# packages, the pinned Pulumi CLI and provider plugins; scripts/setup-python.sh: .venv), checks the
# machine (python -m preflight: memory, ports, DNS, disk, engine, clock) and stops on a blocking
# finding before any resource is touched, then runs `pulumi up`. Run it as root on a bare machine
# (the engine and Python's venv come from apt); once those are there, any user of the docker group.
# The state is kept where PULUMI_BACKEND_URL says, by default Pulumi's local backend (file://~, that
# is ~/.pulumi); a team shares an S3-compatible bucket (s3://BUCKET/PREFIX?endpoint=HOST&region=REGION,
# its access key in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_ENDPOINT_URL_S3 for the
# endpoint). The stack's secrets are encrypted by PULUMI_SECRETS_PROVIDER when a new stack is made
# (default: a passphrase; e.g. awskms://KEY or hashivault://KEY): the passphrase is
# PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE if set; with the local backend only, one
# is otherwise generated once per stack in ~/.config/selfhosted/<stack>.passphrase (keep it: it
# decrypts the generated passwords). The preflight stops a deploy that could not read the state or
# decrypt its secrets.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
stack="${1:-dev}"
shift || true

[[ -f "Pulumi.$stack.yaml" ]] || { echo "deploy: no Pulumi.$stack.yaml: create it from Pulumi.dev.yaml" >&2; exit 1; }

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://~}"

if [[ "${1:-}" == --check ]]; then
  bash scripts/setup-python.sh
  exec .venv/bin/python -m preflight "$stack"
fi

bash scripts/prerequisites.sh engine
bash scripts/prerequisites.sh pulumi
export PATH="$HOME/.pulumi/bin:$PATH"
bash scripts/setup-python.sh
bash scripts/prerequisites.sh plugins
.venv/bin/python -m preflight "$stack"

if [[ "$PULUMI_BACKEND_URL" == file://* && "${PULUMI_SECRETS_PROVIDER:-passphrase}" == passphrase &&
  -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  passphrase_file="$HOME/.config/selfhosted/$stack.passphrase"
  if [[ ! -f "$passphrase_file" ]]; then
    mkdir -p "$(dirname "$passphrase_file")"
    (umask 077 && head -c 32 /dev/urandom | base64 >"$passphrase_file")
    echo "deploy: generated the secrets passphrase of stack $stack in $passphrase_file"
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$passphrase_file"
fi

pulumi stack select --create ${PULUMI_SECRETS_PROVIDER:+--secrets-provider "$PULUMI_SECRETS_PROVIDER"} "$stack"
pulumi up --yes --stack "$stack" "$@"
pulumi stack output --stack "$stack"
