"""What every component shares: object naming, labels, log rotation, the provider and the runtime."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_docker as docker

from components.runtime.base import Runtime
from config.models import LogRotation


@dataclass(frozen=True)
class Deployment:
    """One stack's naming, labels, log rotation, Docker provider and runtime."""

    project: str
    stack: str
    prefix: str
    log_rotation: LogRotation
    protect_data: bool
    runtime: Runtime
    docker_host: str | None = None
    provider: docker.Provider | None = None
    platform: str | None = None
    """The Docker host's platform (e.g. linux/arm64) images are pulled and built for; None: the default."""

    def name(self, suffix: str) -> str:
        """Name of a Docker object of this stack, e.g. `selfhosted-prod-postgres`."""
        return f"{self.prefix}-{suffix}"

    def label_values(self, component: str, role: str) -> dict[str, str]:
        """Labels that say which stack, component and role a container belongs to."""
        values = {"stack": self.stack, "component": component, "role": role}
        return {f"{self.project}.{key}": value for key, value in values.items()}

    def labels(self, component: str, role: str) -> list[docker.ContainerLabelArgs]:
        return [docker.ContainerLabelArgs(label=label, value=value) for label, value in self.label_values(component, role).items()]

    def log_options(self) -> dict[str, str]:
        """Options of the json-file log driver: rotated at max_size, max_file files kept."""
        return {"max-size": self.log_rotation.max_size, "max-file": str(self.log_rotation.max_file)}
