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

from components.rendering import render_template
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


def render_firewall_script(ports: list[AllowedPort]) -> str:
    """A POSIX shell script, run as root on the host, that makes the host's ufw exactly this firewall.

    Safe to rerun: ufw skips rules it has, the after.rules block is replaced whole, and only rules
    carrying this program's comment that are no longer wanted are deleted. SSH is allowed before
    the default deny takes effect, so enabling the firewall cannot cut the session running it.
    """
    return render_template(
        "firewall.sh.j2",
        ufw_rules=[_ufw_rule(port) for port in ports],
        wanted="\n".join(f"{MARKER} {port.label}" for port in ports),
        marker=MARKER,
        blocks=[(AFTER_RULES[version], render_after_rules_block(ports, version)) for version in (4, 6)],
        drop_rule=DROP_RULE,
    )
