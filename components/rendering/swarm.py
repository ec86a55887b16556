"""Scripts that label the nodes of a Docker Swarm for the program's placement constraints."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

NODE_KINDS = ("data", "app", "ingress")
"""What a node runs (`<project>.<kind>=true`): data services and their volumes, stateless
replicas and workers, the proxy's published ports."""


def node_label(project: str, kind: str) -> str:
    return f"{project}.{kind}"


def render_node_labels(project: str, node: str, kinds: Sequence[str]) -> str:
    """Shell script that gives `node` exactly the program's labels for `kinds` (adds the missing
    ones, removes the others it carries); the node's other labels stay as they are."""
    lines = [
        "set -eu",
        f"node={shlex.quote(node)}",
        'labels="$(docker node inspect -f \'{{json .Spec.Labels}}\' "$node")"',
        'change=""',
    ]
    for kind in NODE_KINDS:
        key = node_label(project, kind)
        if kind in kinds:
            lines.append(f'change="$change --label-add {key}=true"')
        else:
            lines.append(f'case "$labels" in *\'"{key}"\'*) change="$change --label-rm {key}" ;; esac')
    lines.append('if [ -n "$change" ]; then docker node update $change "$node" >/dev/null; fi')
    lines.append(f'echo "$node: {" ".join(kinds) or "nothing"}"')
    return "\n".join(lines) + "\n"
