"""The nodes of a Docker Swarm, labelled for what each runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.container import Deployment, docker_script
from components.rendering.swarm import render_node_labels


class SwarmNodes(pulumi.ComponentResource):
    """Labels each node for the kinds of service it runs; services are placed by these labels.

    Removing a node from the setting takes the program's labels off it: its services move to
    the nodes that still carry them.
    """

    def __init__(self, name: str, deployment: Deployment, nodes: Mapping[str, Sequence[str]]) -> None:
        super().__init__(f"{deployment.project}:components:SwarmNodes", name, None, None)
        self.labels = [
            docker_script(
                f"swarm-node-{node}",
                deployment,
                render_node_labels(deployment.project, node, kinds),
                self,
                triggers=[",".join(kinds)],
                delete=render_node_labels(deployment.project, node, ()),
            )
            for node, kinds in sorted(nodes.items())
        ]
        self.register_outputs({})
