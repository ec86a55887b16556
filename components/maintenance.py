"""ImagePruning: after a deploy that changed an image, the stack's older images leave the host."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_command as command

from components.runtime.deployment import Deployment
from components.rendering.maintenance import INTERPRETER, render_image_prune


class ImagePruning(pulumi.ComponentResource):
    """Removes the images the stack's containers no longer run, keeping the previous version of each."""

    def __init__(
        self,
        name: str,
        deployment: Deployment,
        images: Sequence[str],
        after: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{deployment.project}:components:ImagePruning", name, None, opts)
        environment = {"DOCKER_HOST": deployment.docker_host} if deployment.docker_host else None
        self.command = command.local.Command(
            "prune-images",
            create=render_image_prune(f"{deployment.project}.stack={deployment.stack}"),
            interpreter=INTERPRETER,
            environment=environment,
            # Runs again whenever an image reference changes, once every container runs its new image.
            triggers=sorted(set(images)),
            # Not the Docker provider: the command runs on the deploying machine.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
        self.register_outputs({})
