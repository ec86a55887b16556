"""Scripts that label the nodes of a Docker Swarm for the program's placement constraints."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

NODE_KINDS = ("data", "app", "ingress")
"""What a node runs (`<prefix>.<kind>=true`): data services and their volumes, stateless
replicas and workers, the proxy's published ports. The labels are the stack's own (by its
prefix): stacks that share a swarm place their services independently."""


def node_label(prefix: str, kind: str) -> str:
    return f"{prefix}.{kind}"


def render_data_node_check(prefix: str, node: str) -> str:
    """Shell script that fails, saying what to do, unless the engine it talks to is the node that
    `swarm.nodes` gives 'data', and no other node holds this stack's data already."""
    quoted = shlex.quote(node)
    return f"""set -eu
data="$(docker node inspect -f '{{{{.ID}}}}' {quoted})"
if [ "$(docker info -f '{{{{.Swarm.NodeID}}}}')" != "$data" ]; then
  echo "docker.host is not {node}, the node swarm.nodes gives 'data': the program runs its commands in the databases' tasks there; set docker.host to {node} (a manager)" >&2
  exit 1
fi
for holder in $(docker node ls -q --filter node.label={node_label(prefix, "data")}=true); do
  if [ "$holder" != "$data" ]; then
    old="$(docker node inspect -f '{{{{.Description.Hostname}}}}' "$holder")"
    echo "swarm.nodes moves 'data' from $old to {node}, but the databases' volumes are on $old: give 'data' back to $old, or move the volumes first (see docs/swarm.md)" >&2
    exit 1
  fi
done
"""


def render_node_labels(prefix: str, node: str, kinds: Sequence[str]) -> str:
    """Shell script that gives `node` exactly the program's labels for `kinds` (adds the missing
    ones, removes the others it carries); the node's other labels stay as they are."""
    lines = [
        "set -eu",
        f"node={shlex.quote(node)}",
        'labels="$(docker node inspect -f \'{{json .Spec.Labels}}\' "$node")"',
        'change=""',
    ]
    for kind in NODE_KINDS:
        key = node_label(prefix, kind)
        if kind in kinds:
            lines.append(f'change="$change --label-add {key}=true"')
        else:
            lines.append(f'case "$labels" in *\'"{key}"\'*) change="$change --label-rm {key}" ;; esac')
    lines.append('if [ -n "$change" ]; then docker node update $change "$node" >/dev/null; fi')
    lines.append(f'echo "$node: {" ".join(kinds) or "nothing"}"')
    return "\n".join(lines) + "\n"
