"""The Docker objects workloads use: networks, volumes, images and secret files."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_docker as docker

from components.runtime.deployment import Deployment


def secret_upload(path: str, content: pulumi.Input[str], permissions: str) -> docker.ContainerUploadArgs:
    """A file holding a secret: its content kept secret in the state, its mode saying who in the container reads it."""
    return docker.ContainerUploadArgs(file=path, content=pulumi.Output.secret(content), permissions=permissions)


def front_network(deployment: Deployment, opts: pulumi.ResourceOptions) -> docker.Network:
    """The proxy's network: the proxy and the containers it serves, never a database, store or the socket."""
    return private_network(deployment, "front", opts)


def fronted(network: docker.Network | None) -> list[docker.Network]:
    """The networks a container the proxy serves joins besides its own: the front one, when there is a proxy."""
    return [network] if network is not None else []


def private_network(deployment: Deployment, component: str, opts: pulumi.ResourceOptions) -> docker.Network:
    """A network of one component (a bridge; on Swarm an encrypted overlay); its services reach
    each other by alias, nothing else joins."""
    return docker.Network(
        f"{component}-network",
        name=deployment.name(component),
        **deployment.runtime.network_args(),
        labels=[docker.NetworkLabelArgs(label=f"{deployment.project}.stack", value=deployment.stack)],
        # Every field of a network forces replacement, and its name is fixed: the old network must
        # go before the new one can take its name.
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(delete_before_replace=True, ignore_changes=deployment.runtime.network_ignored_changes()),
        ),
    )


def data_volume(deployment: Deployment, name: str, opts: pulumi.ResourceOptions) -> docker.Volume:
    """A named volume for data that must outlive its container; protected where the stack says so."""
    return volume(deployment, name, opts, protect=deployment.protect_data)


def volume(deployment: Deployment, name: str, opts: pulumi.ResourceOptions, protect: bool) -> docker.Volume:
    return docker.Volume(
        f"{name}-volume",
        name=deployment.name(name),
        labels=[docker.VolumeLabelArgs(label=f"{deployment.project}.stack", value=deployment.stack)],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
    )


def built_image(
    resource_name: str,
    image_name: str,
    context: str,
    opts: pulumi.ResourceOptions,
    build_args: Mapping[str, pulumi.Input[str]] | None = None,
    platform: str | None = None,
) -> pulumi.Output[str]:
    """An image built on the Docker host from a directory with a Dockerfile; never pushed.

    Built for `platform` when given, otherwise for the Docker engine's own platform (the provider
    passes an empty platform to the engine's BuildKit). Returns the reference containers should run: the digest, which changes
    with every rebuild and so replaces the containers, or the name where the engine reports no digest.
    """
    image = docker.Image(
        resource_name,
        image_name=image_name,
        build=docker.DockerBuildArgs(context=context, args=build_args, platform=platform),
        skip_push=True,
        opts=opts,
    )
    return pulumi.Output.all(image.repo_digest, image.image_name).apply(lambda refs: refs[0] or refs[1])


def pulled_image(
    reference: str, resource_name: str, opts: pulumi.ResourceOptions, platform: str | None = None
) -> docker.RemoteImage:
    """An image by reference, for `platform` when given, kept on the host when the stack is destroyed
    (other stacks may share it)."""
    return docker.RemoteImage(
        f"{resource_name}-image", name=reference, keep_locally=True, platform=platform, opts=opts
    )
