"""The Docker host's firewall, rendered as one idempotent shell script from the ports the stack publishes.

ufw filters what reaches the host itself (INPUT): SSH, then every public port, then deny the
rest. Docker's published ports never reach INPUT: Docker rewrites their destination (DNAT) before
filtering and forwards them to the container through the FORWARD chain, which starts with Docker's
DOCKER-USER chain. So the same allowed ports are also written into DOCKER-USER, matched by the
port the client connected to (conntrack's original destination port, not the container's), and
every other connection from outside that Docker rewrote is dropped there. The DOCKER-USER rules
live in ufw's after.rules, so ufw loads them again at every boot and every reload.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from config.models import StackSettings

MARKER = "selfhosted"
AFTER_RULES = {4: "/etc/ufw/after.rules", 6: "/etc/ufw/after6.rules"}
"""Where ufw loads the rules of iptables and of ip6tables from."""
# Interfaces Docker's own containers send from (the default bridge and user-defined bridge networks).
DOCKER_BRIDGES = ("docker0", "br-+")
DROP_RULE = "-m conntrack --ctstate DNAT -j DROP"


@dataclass(frozen=True)
class AllowedPort:
    """One port the firewall lets in, and the setting that asks for it."""

    port: int
    protocol: str
    source: str
    """'any', or an address or CIDR."""
    reason: str

    def applies_to(self, version: int) -> bool:
        """Whether the port is let in over IP `version` (4 or 6): from anywhere, or from a source of that version."""
        return self.source == "any" or ipaddress.ip_network(self.source).version == version

    @property
    def label(self) -> str:
        """How operators read it: '443/tcp', or '9000/tcp from 203.0.113.0/24'."""
        where = "" if self.source == "any" else f" from {self.source}"
        return f"{self.port}/{self.protocol}{where}"


def allowed_ports(settings: StackSettings) -> list[AllowedPort]:
    """SSH first, then each public port of the stack, then the operator's own, without repeats."""
    target = settings.ssh_target()
    assert target is not None, "the settings check that an enabled firewall has an SSH host"
    ports = [AllowedPort(target.port, "tcp", "any", "ssh")]
    ports += [AllowedPort(port.port, "tcp", "any", port.key) for port in settings.public_ports()]
    ports += [
        AllowedPort(rule.port, rule.protocol, rule.source, f"firewall.allow[{index}]")
        for index, rule in enumerate(settings.firewall.allow)
    ]
    unique: dict[str, AllowedPort] = {}
    for port in ports:
        unique.setdefault(port.label, port)
    return list(unique.values())


def _ufw_rule(port: AllowedPort) -> str:
    # The comment names the rule itself, so that a rule this script added before and no longer
    # wants is recognised (and removed) by its comment alone.
    return f"ufw allow from {port.source} to any port {port.port} proto {port.protocol} comment '{MARKER} {port.label}'"


def _docker_user_rule(port: AllowedPort) -> str:
    source = "" if port.source == "any" else f"-s {port.source} "
    return (
        f"-A DOCKER-USER {source}-p {port.protocol} -m conntrack --ctorigdstport {port.port} "
        "--ctdir ORIGINAL -j RETURN"
    )


def render_after_rules_block(ports: list[AllowedPort], version: int = 4) -> str:
    """The DOCKER-USER rules of IP `version`, as the block the script keeps at the end of ufw's
    after.rules (4) or after6.rules (6): a source of the other version would not load there."""
    lines = [
        f"# BEGIN {MARKER}: written by the selfhosted deploy, replaced at every deploy",
        "*filter",
        ":DOCKER-USER - [0:0]",
        "-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        # Containers' own traffic (to each other, to the internet) is not inbound.
        *(f"-A DOCKER-USER -i {bridge} -j RETURN" for bridge in DOCKER_BRIDGES),
        *(_docker_user_rule(port) for port in ports if port.applies_to(version)),
        # Only connections Docker rewrote to a container: routed traffic of the host stays as it is.
        f"-A DOCKER-USER {DROP_RULE}",
        "COMMIT",
        f"# END {MARKER}",
    ]
    return "\n".join(lines) + "\n"


def _replace_block(rules_file: str, block: str) -> str:
    """Shell that puts `block` at the end of `rules_file` in place of the one written before."""
    return f"""block=$(cat <<'{MARKER.upper()}_BLOCK'
{block}{MARKER.upper()}_BLOCK
)
sed '/^# BEGIN {MARKER}:/,/^# END {MARKER}$/d' {rules_file} >"$current"
printf '%s\\n' "$block" >>"$current"
cmp -s "$current" {rules_file} || {{ cat "$current" >{rules_file}; changed=yes; }}
"""


def render_firewall_script(ports: list[AllowedPort]) -> str:
    """A POSIX shell script, run as root on the host, that makes the host's ufw exactly this firewall.

    Safe to rerun: ufw skips rules it has, the after.rules block is replaced whole, and only rules
    carrying this program's comment that are no longer wanted are deleted. SSH is allowed before
    the default deny takes effect, so enabling the firewall cannot cut the session running it.
    """
    wanted = "\n".join(f"{MARKER} {port.label}" for port in ports)
    blocks = "".join(_replace_block(AFTER_RULES[version], render_after_rules_block(ports, version)) for version in (4, 6))
    return f"""#!/bin/sh
# Host firewall of the selfhosted stack: ufw for the host, DOCKER-USER for Docker's published ports.
set -eu
export DEBIAN_FRONTEND=noninteractive
if ! command -v ufw >/dev/null; then
  command -v apt-get >/dev/null || {{ echo "firewall: ufw is missing and there is no apt-get to install it" >&2; exit 1; }}
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ufw >/dev/null
fi

# Allowed first (SSH before anything else), so the default deny below never cuts this session.
{chr(10).join(_ufw_rule(port) for port in ports)}

# Rules this script added for ports no longer wanted (recognised by their comment).
wanted='{wanted}'
ufw show added | sed -n "s/^ufw \\(.* comment '\\({MARKER} [^']*\\)'\\)$/\\2|\\1/p" | while IFS='|' read -r comment rule; do
  if ! printf '%s\\n' "$wanted" | grep -qxF "$comment"; then
    eval "ufw delete $rule"
  fi
done

# Each change of a default reloads an active ufw: change them only when they differ.
case "$(ufw status verbose | grep '^Default:' || true)" in
  *"deny (incoming), allow (outgoing)"*) ;;
  *) ufw default deny incoming; ufw default allow outgoing ;;
esac

# The DOCKER-USER blocks at the end of after.rules and after6.rules, each replaced whole (written
# only when it changed).
current=$(mktemp)
trap 'rm -f "$current"' EXIT
changed=no
{blocks}
if ! ufw status | grep -q '^Status: active'; then
  ufw --force enable
elif [ "$changed" = yes ] || ! iptables -C DOCKER-USER {DROP_RULE} 2>/dev/null; then
  # The DOCKER-USER rules are loaded from after.rules: a changed block, or rules someone flushed.
  ufw reload
fi
ufw status verbose
"""
