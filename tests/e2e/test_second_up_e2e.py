"""A second `pulumi up` of an unchanged program changes nothing, in every stack; a replacement stops databases cleanly.

Each stack is applied with the stand-in images, then the program is diffed against the state
the real provider would have recorded (Docker's values read back in the provider's formats).
Any update or replacement fails the test, naming the resource and the property.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.stacks import PROBE_IMAGE, deployed_stack, host_ports, local_overrides, record_figure

pytestmark = pytest.mark.e2e

PORT = host_ports(18500)
VOICEGROW = {"server_image": PROBE_IMAGE, "ws_host": "ws.e2e-up.test", "api_host": "api.e2e-up.test"}
SYNAPSE = {"server_name": "e2e-up.test", "public_host": "matrix.e2e-up.test"}
STACKS: dict[str, dict[str, Any]] = {
    "dev": {"synapse": SYNAPSE},
    "test": {"synapse": SYNAPSE, "voicegrow": VOICEGROW},
    "staging": {"synapse": SYNAPSE, "voicegrow": VOICEGROW, "tls": "self-signed"},
    # The large profile gives each server 4 CPUs; Docker refuses more CPUs than the host has.
    "prod": {
        "synapse": SYNAPSE,
        "voicegrow": VOICEGROW,
        "tls": "self-signed",
        "resources": {"voicegrow_server": {"cpus": 2}},
    },
}
# What each data service prints once it has shut down cleanly (not when killed).
CLEAN_SHUTDOWN = {
    "synapse-postgres": "database system is shut down",
    "voicegrow-mysql": "Shutdown complete",
    "voicegrow-redis": "ready to exit, bye bye",
}


def _overrides(stack: str, offset: int) -> dict[str, Any]:
    return local_overrides(f"e2e-up-{stack}", PORT + offset, STACKS[stack])


@pytest.mark.parametrize("stack", STACKS)
def test_second_up_of_the_unchanged_program_changes_nothing(stack: str) -> None:
    offset = 10 * list(STACKS).index(stack)
    with deployed_stack(stack, _overrides(stack, offset), f"second_up.{stack}") as applied:
        started = time.monotonic()
        changes = applied.plan()
        record_figure("e2e", f"second_up.{stack}.plan", time.monotonic() - started)
        assert changes == [], "a second `pulumi up` would change:\n" + "\n".join(map(str, changes))


def test_a_replacement_stops_each_database_cleanly() -> None:
    # Changed log rotation replaces every container (log options force replacement).
    overrides = _overrides("staging", 40)
    with deployed_stack("staging", overrides, "second_up.replace_all") as applied:
        started = time.monotonic()
        replaced = applied.update({**overrides, "logging": {"max_size": "20m"}})
        record_figure("e2e", "second_up.replace_all_to_healthy", time.monotonic() - started)
        logs = {name.removeprefix("e2e-up-staging-"): text for name, text in replaced.removed_logs.items()}
        for service, line in CLEAN_SHUTDOWN.items():
            assert line in logs[service], f"{service} did not shut down cleanly:\n{logs[service][-2000:]}"
        assert replaced.plan() == []
