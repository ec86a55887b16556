"""Process limits, which the Docker provider cannot set on a container."""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.runtime.deployment import Deployment


def limit_processes(
    deployment: Deployment, name: str, container: docker.Container, pids_limit: int, opts: pulumi.ResourceOptions
) -> command.local.Command:
    """Limit the container's processes (`docker update --pids-limit`) once it runs.

    The provider has no `pids_limit`: Docker's own update sets the limit on the running container
    and keeps it across restarts; a replaced container gets it again (the trigger is its id).
    """
    environment = {"DOCKER_HOST": deployment.docker_host} if deployment.docker_host else None
    return command.local.Command(
        f"{name}-pids-limit",
        create=container.name.apply(lambda container_name: f"docker update --pids-limit {pids_limit} {container_name}"),
        environment=environment,
        triggers=[container.id],
        # Not the Docker provider: the command runs on the deploying machine.
        opts=pulumi.ResourceOptions(parent=opts.parent, depends_on=[container]),
    )
