"""Secrets a component needs: the operator's secret config when set, otherwise generated once."""

from __future__ import annotations

import pulumi
import pulumi_random as random


def secret_or_generated(
    resource_name: str,
    provided: pulumi.Output[str] | None,
    opts: pulumi.ResourceOptions,
    length: int = 32,
) -> pulumi.Output[str]:
    """The provided secret, or a random one kept (encrypted) in the stack's state.

    Generated values use letters and digits only, so they are safe in URLs, YAML and shells.
    """
    if provided is not None:
        return pulumi.Output.secret(provided)
    password = random.RandomPassword(resource_name, length=length, special=False, opts=opts)
    return pulumi.Output.secret(password.result)
