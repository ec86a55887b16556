"""The deploy-time maintenance scripts: pruning the images a stack no longer runs."""

from __future__ import annotations

import shlex

INTERPRETER = ["/bin/bash", "-c"]
PRUNE_IMAGES = r"""set -euo pipefail
# The images the stack's containers run now, by reference (built images, run by digest, are left alone).
for image in $(docker ps -a --filter "label=$STACK_LABEL" --format '{{.Image}}' | sort -u); do
  repository="${image%:*}"
  tag="${image##*:}"
  [[ "$image" == *@* || "$repository" == "$image" || "$tag" == */* ]] && continue
  # The repository's tags made before the running one, newest first: the first is the previous
  # version, kept for rollback. Newer ones (pulled ahead of an upgrade) stay.
  listing="$(docker image ls "$repository" --format '{{.CreatedAt}}|{{.Repository}}:{{.Tag}}')"
  made="$(awk -F'|' -v image="$image" '$2 == image { print $1 }' <<<"$listing")"
  others="$(awk -F'|' -v image="$image" -v made="$made" '$2 != image && $2 !~ /:<none>$/ && $1 < made' <<<"$listing" |
    sort -r | cut -d'|' -f2)"
  previous="$(head -n 1 <<<"$others")"
  [[ -n "$previous" ]] && echo "kept $previous, the version before $image"
  for old in $(tail -n +2 <<<"$others"); do
    # An image another container still runs is refused by docker: it stays.
    if docker image rm "$old" >/dev/null 2>&1; then echo "pruned $old"; else echo "kept $old: a container uses it"; fi
  done
done
"""


def render_image_prune(label: str) -> str:
    """The bash script that removes the stack's older images, keeping each running one and the one before.

    `label` selects the stack's containers (`<project>.stack=<stack>`); a repository's tags are
    ordered by when their images were made, and only those made before the running one are older.
    """
    return f"STACK_LABEL={shlex.quote(label)}\n{PRUNE_IMAGES}"
