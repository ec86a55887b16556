"""The deploy-time maintenance scripts: pruning the images a stack no longer runs."""

from __future__ import annotations

import shlex

INTERPRETER = ["/bin/bash", "-c"]
PRUNE_IMAGES = r"""set -euo pipefail
# The images the stack's containers run, by id (containers are created from image ids).
for id in $(docker ps -aq --filter "label=$STACK_LABEL" | xargs -r docker inspect -f '{{.Image}}' | sort -u); do
  # Each repository the image is tagged in (an image built by the stack, tagged once, has no older tags).
  for repository in $(docker image inspect -f '{{range .RepoTags}}{{println .}}{{end}}' "$id" | sed 's/:[^:/]*$//' | sort -u); do
    # The repository's tags made before the running image, newest first: the first is the previous
    # version, kept for rollback. Newer ones (pulled ahead of an upgrade) stay.
    listing="$(docker image ls --no-trunc "$repository" --format '{{.CreatedAt}}|{{.ID}}|{{.Repository}}:{{.Tag}}')"
    made="$(awk -F'|' -v id="$id" '$2 == id { print $1; exit }' <<<"$listing")"
    older="$(awk -F'|' -v id="$id" -v made="$made" '$2 != id && $3 !~ /:<none>$/ && $1 < made { print $1 "|" $3 }' <<<"$listing" |
      sort -r | cut -d'|' -f2)"
    previous="$(head -n 1 <<<"$older")"
    if [[ -n "$previous" ]]; then echo "kept $previous, the version before the one running"; fi
    for old in $(tail -n +2 <<<"$older"); do
      # An image another container still runs is refused by docker: it stays.
      if docker image rm "$old" >/dev/null 2>&1; then echo "pruned $old"; else echo "kept $old: a container uses it"; fi
    done
  done
done
"""


def render_image_prune(label: str) -> str:
    """The bash script that removes the stack's older images, keeping each running one and the one before.

    `label` selects the stack's containers (`<project>.stack=<stack>`); a repository's tags are
    ordered by when their images were made, and only those made before the running one are older.
    """
    return f"STACK_LABEL={shlex.quote(label)}\n{PRUNE_IMAGES}"
