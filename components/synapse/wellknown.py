"""The homeserver's .well-known delegation server (nginx), on Synapse's and the proxy's networks."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from components.runtime.deployment import Deployment, service_container
from components.runtime.storage import fronted
from components.runtime.workload import FileDirectory, HealthCheck, ServiceContainer, Workload, role_fields
from components.rendering import synapse as render
from components.synapse.args import SynapseStackArgs


def wellknown_server(
    deployment: Deployment, args: SynapseStackArgs, network: docker.Network, image: docker.RemoteImage, opts: pulumi.ResourceOptions
) -> Workload:
    """nginx answering /.well-known/matrix/{server,client}, published on the host's loopback."""
    settings = args.settings
    return service_container(
        deployment,
        ServiceContainer(
            **role_fields(args.roles["wellknown"]),
            name="synapse-wellknown",
            runs_on="app",
            image=deployment.runtime.runnable(image),
            healthcheck=HealthCheck(
                test=["CMD", "wget", "-q", "--spider", "http://127.0.0.1/.well-known/matrix/server"],
                timeout=5,
                start_period=10,
            ),
            network=network,
            aliases=["wellknown"],
            extra_networks=fronted(args.front_network),
            extra_aliases=["wellknown"],
            ports=[docker.ContainerPortArgs(internal=80, external=settings.wellknown_port, ip=settings.http_bind)],
            file_directories=[
                FileDirectory("config", "/etc/nginx/conf.d", {"default.conf": render.render_wellknown_nginx_conf(settings, args.tls)})
            ],
        ),
        opts,
    )
