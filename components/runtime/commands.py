"""Commands the deploy runs with the docker CLI on the stack's engine: in a workload, or a script."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_command as command

from components.runtime.deployment import Deployment
from components.runtime.workload import Workload


def exec_in_container(
    resource_name: str,
    deployment: Deployment,
    container: Workload,
    argv: list[str],
    environment: Mapping[str, pulumi.Input[str]],
    parent: pulumi.Resource,
    stdin: str | None = None,
    triggers: list[pulumi.Input[str]] | None = None,
) -> command.local.Command:
    """Run a one-time setup command inside a running container with the docker CLI.

    It runs on first deploy and again when `triggers` change. Environment values are passed
    by name (`docker exec -e NAME`), so secrets never appear on a command line.
    """
    return command.local.Command(
        resource_name,
        create=container.name.apply(
            lambda name: _docker_exec(deployment.runtime.running_container(name), argv, environment, stdin is not None)
        ),
        stdin=stdin,
        environment=_process_environment(deployment, environment),
        triggers=triggers,
        # Not the Docker provider: the command runs on the deploying machine.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[container]),
    )


def exec_in_named_container(
    resource_name: str,
    deployment: Deployment,
    container_name: str,
    argv: list[str],
    parent: pulumi.Resource | None,
    triggers: list[pulumi.Input[str]],
    stdin: pulumi.Input[str] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
) -> command.local.Command:
    """Run a command in the container named `container_name` (without the prefix), whichever
    container of that name runs when the command's turn comes: one this deploy has yet to replace,
    or one declared elsewhere in the program.

    It runs when `triggers` change. Where no such container exists yet (the first deploy) there
    is nothing to act on: it says so and succeeds. A container that exists but does not run, or
    a command that fails, fails the deploy before anything that depends on it changes.
    """
    name = deployment.name(container_name)
    script = (
        f"if ! {deployment.runtime.exists(name)}; then "
        f"echo '{name} does not exist yet: nothing to do'; exit 0; fi; "
        f"exec {_docker_exec(deployment.runtime.running_container(name), argv, {}, stdin is not None)}"
    )
    return docker_script(resource_name, deployment, script, parent, triggers, stdin, depends_on)


def docker_script(
    resource_name: str,
    deployment: Deployment,
    script: pulumi.Input[str],
    parent: pulumi.Resource | None,
    triggers: list[pulumi.Input[str]],
    stdin: pulumi.Input[str] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
    delete: str | None = None,
) -> command.local.Command:
    """Run a shell script with the docker CLI on the stack's engine when `triggers` change (and
    `delete`, if given, when the command is removed); a failing script fails the deploy before
    anything that depends on it changes."""
    return command.local.Command(
        resource_name,
        create=script,
        delete=delete,
        stdin=stdin,
        environment=_process_environment(deployment, {}),
        triggers=triggers,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def _docker_exec(target: str, argv: list[str], environment: Mapping[str, object], interactive: bool) -> str:
    """`docker exec` in the container `target` names (shell words, see Runtime.running_container)."""
    passed = "".join(f"-e {variable} " for variable in environment)
    return f"docker exec {'-i ' if interactive else ''}{passed}{target} {shlex.join(argv)}"


def _process_environment(deployment: Deployment, environment: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Input[str]]:
    process_environment = dict(environment)
    if deployment.docker_host:
        process_environment["DOCKER_HOST"] = deployment.docker_host
    return process_environment
