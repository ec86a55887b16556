"""A part of a component: resources one component declares, grouped by concern in a module of their own."""

from __future__ import annotations

import pulumi

from components.runtime.deployment import Deployment


class ComponentPart:
    """Declares its resources under the component it belongs to, so that a resource's name and
    parent, and with them the state of a deployed stack, do not depend on which part declares it."""

    def __init__(self, component: pulumi.Resource, deployment: Deployment) -> None:
        self._component = component
        self._deployment = deployment
        self._child = pulumi.ResourceOptions(parent=component, provider=deployment.provider)

    def _child_after(self, resources: list[pulumi.Resource]) -> pulumi.ResourceOptions:
        """The options of a resource of this part that is declared after `resources`."""
        return pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=resources))
