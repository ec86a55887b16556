"""Apply a Pulumi program to a real Docker engine under Pulumi's mock runtime.

    from tests.e2e.harness import apply_program

    with apply_program(REPO, "dev", config_overrides={"synapse": {"serverName": "e2e.test"}}) as stack:
        stack.outputs["synapse_client_url"]

Docker containers, networks, volumes and images (and, inside `swarm_manager()`, swarm services,
secrets and configs) are created on the engine (DOCKER_HOST or the
local socket), `command:local:Command` runs for real (`command:remote:Command` over SSH), random
and TLS values are generated;
see `docker_mapping` for how each input becomes an Engine API field.
"""

from tests.stack_config import ConfigError, load_config, project_name

from .apply import AppliedStack, ApplyError, apply_program, connect_engine
from .engine import EngineError, engine_unavailable_reason
from .mocks import SUPPORTED_TYPES, AppliedResource, HarnessMocks, HarnessState, ResourceTiming
from .planning import Change
from .swarm import Swarm, SwarmError, swarm_manager
from .values import UnsupportedInput

__all__ = [
    "SUPPORTED_TYPES",
    "AppliedResource",
    "AppliedStack",
    "ApplyError",
    "Change",
    "ConfigError",
    "EngineError",
    "HarnessMocks",
    "HarnessState",
    "ResourceTiming",
    "Swarm",
    "SwarmError",
    "UnsupportedInput",
    "apply_program",
    "connect_engine",
    "engine_unavailable_reason",
    "load_config",
    "project_name",
    "swarm_manager",
]
