"""A stack that deploys to a remote Docker host: every Docker resource and first-run command goes there."""

from __future__ import annotations

from typing import Any

import pulumi

from tests.program import run_program
from tests.stack_config import HOST_KEY
from tests.unit.mocks import RecordingMocks

REMOTE = {"docker": {"host": "ssh://deploy@vps.example.com"}, "firewall": {"host_key": HOST_KEY}}


class ProviderRecordingMocks(RecordingMocks):
    """Also records which provider each resource was registered with."""

    def __init__(self) -> None:
        super().__init__()
        self.providers: dict[str, str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.providers[f"{args.typ}::{args.name}"] = args.provider or ""
        return super().new_resource(args)


def _evaluate() -> ProviderRecordingMocks:
    mocks = ProviderRecordingMocks()
    run_program(mocks, "prod", preview=False, overrides=REMOTE)
    return mocks


def test_the_docker_provider_targets_the_configured_host() -> None:
    provider = _evaluate().named("docker", "pulumi:providers:docker")
    assert provider.value("host") == "ssh://deploy@vps.example.com"


def test_every_docker_resource_uses_the_remote_provider() -> None:
    mocks = _evaluate()
    docker_resources = [key for key in mocks.providers if key.startswith("docker:index/")]
    assert docker_resources
    for key in docker_resources:
        assert "pulumi:providers:docker::docker" in mocks.providers[key], key


def test_first_run_commands_reach_the_remote_engine() -> None:
    mocks = _evaluate()
    for command in mocks.of_type("command:local:Command"):
        assert command.value("environment")["DOCKER_HOST"] == "ssh://deploy@vps.example.com", command.name


def test_random_and_tls_resources_keep_their_own_providers() -> None:
    mocks = _evaluate()
    for key, provider in mocks.providers.items():
        if key.startswith(("random:", "tls:", "command:")):
            assert "providers:docker" not in provider, key
