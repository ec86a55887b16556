#!/usr/bin/env bash
# Installs what a deploy needs when it is missing, and checks what it installs:
#   - a Docker engine, from the distribution's own packages (docker.io on Debian and Ubuntu; needs root);
#   - the Pulumi CLI at the pinned version, into ~/.pulumi/bin (no root), its archive checked against
#     the pinned SHA-256 before it is unpacked;
#   - the provider plugins at exactly the versions requirements.txt pins (pulumi-docker==5.2.0 ->
#     resource plugin docker v5.2.0), so that `pulumi up` fetches nothing mid-run.
# What is present is left alone: a second run downloads nothing.
#
#   scripts/prerequisites.sh engine     the Docker engine
#   scripts/prerequisites.sh pulumi     the Pulumi CLI
#   scripts/prerequisites.sh plugins    the provider plugins (needs the CLI)
#
# Download locations (point them at an internal mirror that keeps the same file names):
#   SELFHOSTED_PULUMI_DOWNLOAD_URL  where pulumi-v<version>-linux-<x64|arm64>.tar.gz is
#                                   (default https://get.pulumi.com/releases/sdk)
#   SELFHOSTED_PLUGIN_SERVER        where pulumi-resource-<name>-v<version>-linux-<amd64|arm64>.tar.gz is
#                                   (default https://get.pulumi.com/releases/plugins)
#   SELFHOSTED_PULUMI_VERSION, SELFHOSTED_PULUMI_SHA256
#                                   another CLI version, with the SHA-256 of its archive for this machine
#                                   (from pulumi-<version>-checksums.txt); both or neither
# The Docker engine comes from the apt sources the machine already has.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The pinned CLI and the SHA-256 of its archives, as published in pulumi-3.253.0-checksums.txt.
PULUMI_VERSION=3.253.0
declare -A PULUMI_SHA256=(
  [x64]=33161e521280e6c77395a46344dba5ff9c118a90df254801e662087143b4d1ac
  [arm64]=7d7074d67a76139226c163b2365f14fbd45d8e2251362a2e10dc4602b3b577ea
)
PULUMI_DOWNLOAD_URL="${SELFHOSTED_PULUMI_DOWNLOAD_URL:-https://get.pulumi.com/releases/sdk}"
PLUGIN_SERVER="${SELFHOSTED_PLUGIN_SERVER:-https://get.pulumi.com/releases/plugins}"
PULUMI_BIN="$HOME/.pulumi/bin"
ENGINE_TIMEOUT=60

say() { printf 'prerequisites: %s\n' "$*"; }
die() { printf 'prerequisites: error: %s\n' "$*" >&2; exit 1; }

apt_install() {
  [[ "$(id -u)" == 0 ]] || die "installing $* needs root: run this as root (or with sudo), or install $* yourself"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: check the machine's apt sources"
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}

engine_answers() { docker info >/dev/null 2>&1; }

start_engine() {
  if [[ -d /run/systemd/system ]]; then
    systemctl enable --now docker >/dev/null 2>&1 || die "systemctl could not start docker: see 'journalctl -u docker'"
  else
    service docker start >/dev/null || die "could not start docker ('service docker start'): see /var/log/docker.log"
  fi
  local waited=0
  until engine_answers; do
    ((waited < ENGINE_TIMEOUT)) || die "the Docker engine did not answer within ${ENGINE_TIMEOUT}s"
    sleep 1
    waited=$((waited + 1))
  done
}

engine() {
  if engine_answers; then
    say "Docker engine present ($(docker version --format '{{.Server.Version}}'))"
    return
  fi
  if ! command -v dockerd >/dev/null; then
    # shellcheck source=/dev/null
    . /etc/os-release
    case " ${ID:-} ${ID_LIKE:-} " in
      *" debian "* | *" ubuntu "*) ;;
      *) die "no Docker engine, and ${PRETTY_NAME:-this system} is not Debian or Ubuntu: install Docker Engine from your distribution or https://docs.docker.com/engine/install/, then run this again" ;;
    esac
    say "installing the Docker engine from ${PRETTY_NAME:-the distribution}'s packages (docker.io)"
    apt_install docker.io
    if engine_answers; then
      say "Docker engine $(docker version --format '{{.Server.Version}}') running"
      return
    fi
  fi
  [[ "$(id -u)" == 0 ]] || die "the Docker engine is installed but not answering this user: start it (sudo systemctl start docker) and add yourself to the docker group (sudo usermod -aG docker $USER, then log in again)"
  say "starting the Docker engine"
  start_engine
  say "Docker engine $(docker version --format '{{.Server.Version}}') running"
}

pulumi_arch() {
  case "$(uname -m)" in
    x86_64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) die "no Pulumi CLI build for $(uname -m): see https://www.pulumi.com/docs/install/" ;;
  esac
}

pulumi_cli() {
  export PATH="$PULUMI_BIN:$PATH"
  if command -v pulumi >/dev/null; then
    say "Pulumi CLI present ($(pulumi version))"
    return
  fi
  local version="$PULUMI_VERSION" arch sha
  arch="$(pulumi_arch)"
  sha="${PULUMI_SHA256[$arch]}"
  if [[ -n "${SELFHOSTED_PULUMI_VERSION:-}${SELFHOSTED_PULUMI_SHA256:-}" ]]; then
    [[ -n "${SELFHOSTED_PULUMI_VERSION:-}" && -n "${SELFHOSTED_PULUMI_SHA256:-}" ]] ||
      die "set SELFHOSTED_PULUMI_VERSION and SELFHOSTED_PULUMI_SHA256 together (the SHA-256 of the version's linux-$arch archive)"
    version="$SELFHOSTED_PULUMI_VERSION"
    sha="$SELFHOSTED_PULUMI_SHA256"
  fi
  command -v curl >/dev/null || apt_install curl ca-certificates
  local archive="pulumi-v$version-linux-$arch.tar.gz" work
  mkdir -p "$HOME/.pulumi"
  # Downloaded and unpacked beside its destination, moved into place only once checked.
  work="$(mktemp -d "$HOME/.pulumi/.install.XXXXXX")"
  trap "rm -rf '$work'" EXIT
  say "downloading the Pulumi CLI $version from $PULUMI_DOWNLOAD_URL/$archive"
  curl -fsSL --retry 3 --connect-timeout 20 -o "$work/$archive" "$PULUMI_DOWNLOAD_URL/$archive" ||
    die "could not download $PULUMI_DOWNLOAD_URL/$archive: set SELFHOSTED_PULUMI_DOWNLOAD_URL to a mirror that has it"
  local got
  got="$(sha256sum "$work/$archive" | cut -d' ' -f1)"
  [[ "$got" == "$sha" ]] ||
    die "$archive from $PULUMI_DOWNLOAD_URL has SHA-256 $got, not the published $sha: nothing was installed; check the mirror's copy against pulumi-$version-checksums.txt"
  tar -xzf "$work/$archive" -C "$work" || die "could not unpack $archive: nothing was installed"
  [[ -x "$work/pulumi/pulumi" ]] || die "$archive holds no pulumi/pulumi: nothing was installed"
  rm -rf "$PULUMI_BIN"
  mv "$work/pulumi" "$PULUMI_BIN"
  say "Pulumi CLI $(pulumi version) installed in $PULUMI_BIN (add it to your PATH for pulumi commands by hand)"
}

# "name version" of each provider package requirements.txt pins (pulumi-docker==5.2.0 -> docker 5.2.0);
# pulumi-policy is the policy pack's SDK, not a provider.
pinned_plugins() {
  sed -nE '/^pulumi-policy==/d; s/^pulumi-([a-z0-9-]+)==([0-9][0-9A-Za-z.+-]*)[[:space:]]*(#.*)?$/\1 \2/p' requirements.txt
}

plugins() {
  export PATH="$PULUMI_BIN:$PATH"
  command -v pulumi >/dev/null || die "the Pulumi CLI is missing: run 'scripts/prerequisites.sh pulumi' first"
  local installed name version
  installed="$(pulumi plugin ls)"
  while read -r name version; do
    if awk -v n="$name" -v v="$version" '$1 == n && $2 == "resource" && $3 == v { found = 1 } END { exit !found }' <<<"$installed"; then
      say "plugin $name v$version present"
      continue
    fi
    say "installing plugin $name v$version from $PLUGIN_SERVER"
    pulumi plugin install resource "$name" "v$version" --server "$PLUGIN_SERVER" >/dev/null ||
      die "could not install plugin $name v$version from $PLUGIN_SERVER: set SELFHOSTED_PLUGIN_SERVER to a mirror that has pulumi-resource-$name-v$version-linux-<amd64|arm64>.tar.gz"
  done < <(pinned_plugins)
}

case "${1:-}" in
  engine) engine ;;
  pulumi) pulumi_cli ;;
  plugins) plugins ;;
  *) die "usage: $0 engine|pulumi|plugins" ;;
esac
