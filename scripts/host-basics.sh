#!/usr/bin/env bash
# The host settings the guides make by hand, each only when asked for; running it again changes nothing.
#
#   scripts/host-basics.sh [--timezone ZONE] [--swap STACK] [--security-upgrades]
#
#   --timezone ZONE       set the system time zone (e.g. Asia/Shanghai); the stack's schedules stay in UTC
#   --swap STACK          a swap file (/swapfile, or SELFHOSTED_SWAP_FILE) as large as the stack's containers
#                         need beside this machine's memory so that all can reach their limits at once
#                         (python -m preflight STACK --swap-mb); nothing when the memory holds them
#   --security-upgrades   install unattended-upgrades and turn on the daily security upgrades
#
# Runs as root. SSH settings are never touched.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SWAP_FILE="${SELFHOSTED_SWAP_FILE:-/swapfile}"
AUTO_UPGRADES=/etc/apt/apt.conf.d/20auto-upgrades

say() { printf 'host-basics: %s\n' "$*"; }
die() { printf 'host-basics: error: %s\n' "$*" >&2; exit 1; }

timezone() {
  local zone="$1"
  [[ -f "/usr/share/zoneinfo/$zone" ]] || die "unknown time zone '$zone': pick one from /usr/share/zoneinfo (e.g. Asia/Shanghai, Europe/Berlin)"
  if [[ "$(readlink /etc/localtime)" == "/usr/share/zoneinfo/$zone" ]]; then
    say "time zone already $zone"
    return
  fi
  if [[ -d /run/systemd/system ]]; then
    timedatectl set-timezone "$zone"
  else
    ln -sf "/usr/share/zoneinfo/$zone" /etc/localtime
    echo "$zone" >/etc/timezone
  fi
  say "time zone set to $zone"
}

swap() {
  local stack="$1" needed have
  bash scripts/setup-python.sh
  needed="$(.venv/bin/python -m preflight "$stack" --swap-mb)"
  have=$(($(awk '/^SwapTotal:/ { print $2 }' /proc/meminfo) / 1024))
  if ((needed == 0)); then
    say "no swap needed: this machine's memory holds every limit of stack $stack"
    return
  fi
  # The kernel reports a swap file one page smaller than its size.
  if ((have + 1 >= needed)); then
    say "swap already ${have} MB (stack $stack needs ${needed} MB)"
    return
  fi
  if swapon --show=NAME --noheadings | grep -qx "$SWAP_FILE"; then
    swapoff "$SWAP_FILE"
  fi
  local size=$((needed - have))
  say "creating a ${size} MB swap file at $SWAP_FILE"
  rm -f "$SWAP_FILE"
  (umask 077 && dd if=/dev/zero of="$SWAP_FILE" bs=1M count="$size" status=none)
  mkswap "$SWAP_FILE" >/dev/null
  swapon "$SWAP_FILE"
  grep -q "^$SWAP_FILE " /etc/fstab || echo "$SWAP_FILE none swap sw 0 0" >>/etc/fstab
  say "swap now $(($(awk '/^SwapTotal:/ { print $2 }' /proc/meminfo) / 1024)) MB"
}

security_upgrades() {
  local wanted
  wanted=$'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";'
  if dpkg-query -W -f='${Status}' unattended-upgrades 2>/dev/null | grep -q 'install ok installed' &&
    [[ "$(cat "$AUTO_UPGRADES" 2>/dev/null)" == "$wanted" ]]; then
    say "unattended security upgrades already on"
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq unattended-upgrades >/dev/null
  printf '%s\n' "$wanted" >"$AUTO_UPGRADES"
  say "unattended security upgrades on (daily; $AUTO_UPGRADES)"
}

(($#)) || die "nothing asked for: see the options at the top of $0"
[[ "$(id -u)" == 0 ]] || die "run this as root (or with sudo)"
while (($#)); do
  case "$1" in
    --timezone) timezone "${2:?--timezone needs a zone like Asia/Shanghai}"; shift 2 ;;
    --swap) swap "${2:?--swap needs the stack, e.g. --swap dev}"; shift 2 ;;
    --security-upgrades) security_upgrades; shift ;;
    *) die "unknown option $1: see the options at the top of $0" ;;
  esac
done
