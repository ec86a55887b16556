"""ImagePruning under mocks: after every container, with the stack's image references as triggers."""

from __future__ import annotations

from typing import Any

from tests.unit.conftest import Evaluate, Evaluation, Registration
from tests.stack_config import HOST_KEY

COMMAND = "command:local:Command"


def _prune(evaluation: Evaluation) -> Any:
    return evaluation.mocks.named("prune-images", COMMAND)


def test_every_stack_prunes_its_older_images_by_default(evaluate: Evaluate) -> None:
    script = _prune(evaluate("prod")).value("create")
    assert "STACK_LABEL=selfhosted.stack=prod" in script
    assert "docker image rm" in script


def test_the_prune_runs_with_bash(evaluate: Evaluate) -> None:
    assert _prune(evaluate("prod")).value("interpreter") == ["/bin/bash", "-c"]


def test_the_prune_runs_again_when_an_image_reference_changes(evaluate: Evaluate) -> None:
    before = _prune(evaluate("prod")).value("triggers")
    after = _prune(evaluate("prod", overrides={"images": {"synapse": "matrixdotorg/synapse:v1.164.0"}})).value("triggers")
    assert "matrixdotorg/synapse:v1.164.0" in after
    assert "matrixdotorg/synapse:v1.164.0" not in before


def test_the_prune_follows_the_registry_mirror(evaluate: Evaluate) -> None:
    triggers = _prune(evaluate("prod", overrides={"images": {"registry_mirrors": {"docker.io": "mirror.example.cn/hub"}}})).value("triggers")
    assert "mirror.example.cn/hub/matrixdotorg/synapse:v1.163.2" in triggers


def test_the_prune_waits_for_every_container_of_the_stack(evaluate: Evaluate, registrations: dict[str, Registration]) -> None:
    containers = {resource.name for resource in evaluate("prod").mocks.of_type("docker:index/container:Container")}
    assert len(containers) > 10
    assert containers <= registrations["prune-images"].dependencies


def test_the_prune_reaches_a_remote_engine(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", overrides={"docker": {"host": "ssh://deploy@vps.example.com"}, "firewall": {"host_key": HOST_KEY}})
    assert _prune(evaluation).value("environment") == {"DOCKER_HOST": "ssh://deploy@vps.example.com"}


def test_pruning_can_be_turned_off(evaluate: Evaluate) -> None:
    names = [resource.name for resource in evaluate("prod", overrides={"images": {"prune": False}}).mocks.of_type(COMMAND)]
    assert "prune-images" not in names
    assert names, "the stack's other commands are still declared"
