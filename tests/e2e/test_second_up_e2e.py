"""A second `pulumi up` of an unchanged program changes nothing (prod, staging); a replacement stops databases cleanly.

Each stack is applied with the stand-in images, then the program is diffed against the state
the real provider would have recorded (Docker's values read back in the provider's formats).
Any update or replacement fails the test, naming the resource and the property.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.stacks import (
    PROBE_IMAGE,
    assert_second_up_changes_nothing,
    deployed_stack,
    host_ports,
    local_overrides,
    record_figure,
)

pytestmark = pytest.mark.e2e

PORT = host_ports(18500)
VOICEGROW = {"server_image": PROBE_IMAGE, "ws_host": "ws.e2e-up.test", "api_host": "api.e2e-up.test"}
SYNAPSE = {"server_name": "e2e-up.test", "public_host": "matrix.e2e-up.test"}
# Every component; dev and test are checked by the Synapse and proxy modules, on the stacks they deploy.
PROD = {
    "synapse": SYNAPSE,
    "voicegrow": VOICEGROW,
    "tls": "self-signed",
    # The large profile gives each server 4 CPUs; Docker refuses more CPUs than the host has.
    "resources": {"voicegrow_server": {"cpus": 2}},
}
STAGING = {"synapse": SYNAPSE, "voicegrow": VOICEGROW, "tls": "self-signed"}
# What each data service prints once it has shut down cleanly (not when killed).
CLEAN_SHUTDOWN = {
    "synapse-postgres": "database system is shut down",
    "voicegrow-mysql": "Shutdown complete",
    "voicegrow-redis": "ready to exit, bye bye",
}


def test_second_up_of_the_unchanged_prod_program_changes_nothing() -> None:
    with deployed_stack("prod", local_overrides("e2e-up-prod", PORT, PROD), "second_up.prod") as applied:
        assert_second_up_changes_nothing(applied, "second_up.prod")


def test_second_up_of_staging_changes_nothing_and_a_replacement_stops_each_database_cleanly() -> None:
    overrides = local_overrides("e2e-up-staging", PORT + 10, STAGING)
    with deployed_stack("staging", overrides, "second_up.staging") as applied:
        assert_second_up_changes_nothing(applied, "second_up.staging")
        # Changed log rotation replaces every container (log options force replacement).
        started = time.monotonic()
        replaced = applied.update({**overrides, "logging": {"max_size": "20m"}})
        record_figure("e2e", "second_up.replace_all_to_healthy", time.monotonic() - started)
        logs = {name.removeprefix("e2e-up-staging-"): text for name, text in replaced.removed_logs.items()}
        for service, line in CLEAN_SHUTDOWN.items():
            assert line in logs[service], f"{service} did not shut down cleanly:\n{logs[service][-2000:]}"
        assert_second_up_changes_nothing(replaced, "second_up.staging_replaced")
