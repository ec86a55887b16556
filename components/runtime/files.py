"""Files a workload reads, staged onto volumes of their own by a one-time container."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

from components.runtime.deployment import Deployment
from components.runtime.storage import volume
from components.runtime.workload import FileDirectory, ServiceContainer, confinement
from config.hardening import SecurityPolicy
from config.types import docker_cpus


# What the preparing container may do as root: write into directories and files of another
# user (DAC_OVERRIDE, FOWNER) and hand them over (CHOWN). Nothing else.
PREPARE_POLICY = SecurityPolicy(user="0:0", capabilities=("CHOWN", "DAC_OVERRIDE", "FOWNER"), read_only=False, tmpfs=())
STAGING_DIR = "/staging"


def prepare_files(
    deployment: Deployment, spec: ServiceContainer, opts: pulumi.ResourceOptions
) -> tuple[docker.Container, list[docker.Volume]]:
    """A one-time container that writes the service's files onto their volumes and hands volumes to its user.

    It runs once per change of the files (and is then replaced), without network, and exits.
    """
    owner = spec.security.user or "0:0"
    volumes = [
        volume(deployment, f"{spec.name}-{directory.name}", opts, protect=False) for directory in spec.file_directories
    ]
    uploads = [
        docker.ContainerUploadArgs(file=f"{STAGING_DIR}{directory.path}/{name}", content=content, permissions="0400")
        for directory in spec.file_directories
        for name, content in sorted(directory.files.items())
    ]
    return (
        docker.Container(
            f"{spec.name}-files",
            name=deployment.name(f"{spec.name}-files"),
            image=spec.image,
            entrypoints=["/bin/sh", "-c", render_prepare_script(spec.file_directories, spec.owned_paths, owner)],
            volumes=[
                *(
                    docker.ContainerVolumeArgs(volume_name=volume.name, container_path=directory.path)
                    for directory, volume in zip(spec.file_directories, volumes)
                ),
                *(volume for volume in spec.volumes if volume.container_path in spec.owned_paths),
            ],
            uploads=uploads,
            network_mode="none",
            memory=64,
            memory_swap=128,
            cpus=docker_cpus(0.5),
            **confinement(PREPARE_POLICY),
            log_driver="json-file",
            log_opts=deployment.log_options(),
            labels=deployment.labels(spec.component, f"{spec.role}-files"),
            # Waits for the exit; it is not meant to keep running.
            attach=True,
            must_run=False,
            opts=opts,
        ),
        volumes,
    )


def render_prepare_script(directories: Sequence[FileDirectory], owned_paths: Sequence[str], owner: str) -> str:
    """The shell script of the preparing container: exactly the given files, 0400, owned by `owner`."""
    lines = ["set -eu"]
    for directory in directories:
        target = shlex.quote(directory.path)
        staged = shlex.quote(f"{STAGING_DIR}{directory.path}")
        lines += [
            f"find {target} -mindepth 1 -delete",
            f"cp -p {staged}/* {target}/",
            f"chown -R {owner} {target}",
            f"chmod 0400 {target}/*",
            f"chmod 0500 {target}",
        ]
    for path in owned_paths:
        lines.append(f"find {shlex.quote(path)} \\! -user {owner.split(':')[0]} -exec chown {owner} {{}} +")
    return "\n".join(lines)
