"""The nodes of a Docker Swarm, labelled for what each runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.runtime.commands import docker_script
from components.runtime.deployment import Deployment
from components.rendering.swarm import render_data_node_check, render_node_labels


class SwarmNodes(pulumi.ComponentResource):
    """Labels each node for the kinds of service this stack runs there; services are placed by
    these labels. First it checks that the program talks to the data node, and that the data
    stays where its volumes are.

    Removing a node from the setting takes this stack's labels off it: its services move to
    the nodes that still carry them.
    """

    def __init__(self, name: str, deployment: Deployment, nodes: Mapping[str, Sequence[str]]) -> None:
        super().__init__(f"{deployment.project}:components:SwarmNodes", name, None, None)
        data_node = next(node for node, kinds in nodes.items() if "data" in kinds)
        check = docker_script(
            "swarm-data-node",
            deployment,
            render_data_node_check(deployment.prefix, data_node),
            self,
            triggers=[data_node, deployment.docker_host or ""],
        )
        self.labels = [
            docker_script(
                f"swarm-node-{node}",
                deployment,
                render_node_labels(deployment.prefix, node, kinds),
                self,
                triggers=[",".join(kinds)],
                depends_on=[check],
                delete=render_node_labels(deployment.prefix, node, ()),
            )
            for node, kinds in sorted(nodes.items())
        ]
        self.register_outputs({})
