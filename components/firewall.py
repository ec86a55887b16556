"""HostFirewall: the Docker host's ufw and DOCKER-USER rules, applied over SSH from the ports the stack publishes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.rendering.firewall import AllowedPort, render_firewall_script
from config.models import SshTarget

# Root runs the script as it is; another user through sudo, which must not ask for a password.
RUN_AS_ROOT = 'if [ "$(id -u)" -eq 0 ]; then sh -s; else sudo -n sh -s; fi'


@dataclass(frozen=True)
class HostFirewallArgs:
    """Where to connect and what to let in."""

    target: SshTarget
    ports: list[AllowedPort]
    host_key: str | None
    private_key: pulumi.Output[str] | None
    """None: the SSH agent (SSH_AUTH_SOCK) authenticates."""


class HostFirewall(pulumi.ComponentResource):
    """Sends the rendered firewall script to the host over SSH; a change of the allowed ports sends it again."""

    def __init__(
        self, name: str, project: str, args: HostFirewallArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{project}:components:HostFirewall", name, None, opts)
        script = render_firewall_script(args.ports)
        self.open_ports = [port.label for port in args.ports]
        self.command = remote.Command(
            f"{name}-rules",
            connection=remote.ConnectionArgs(
                host=args.target.host,
                user=args.target.user,
                port=args.target.port,
                private_key=args.private_key,
                host_key=args.host_key,
            ),
            create=RUN_AS_ROOT,
            stdin=script,
            # The script is the whole state: any change of it applies the firewall again.
            triggers=[hashlib.sha256(script.encode()).hexdigest()],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.status = self.command.stdout
        self.register_outputs({"open_ports": self.open_ports, "status": self.status})
