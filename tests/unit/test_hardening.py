"""Every container is confined by its role's policy: capabilities, privileges, root filesystem, user, processes."""

from __future__ import annotations

import re

import pytest

from config import ConfigError
from tests.program import STACKS
from tests.unit.conftest import Evaluate, Evaluation
from tests.unit.mocks import Declared

CONTAINER = "docker:index/container:Container"
COMMAND = "command:local:Command"
# Container name in the prod stack -> its role.
ROLES = {
    "synapse-postgres": "postgres",
    "synapse": "synapse",
    "synapse-wellknown": "wellknown",
    "voicegrow-mysql": "mysql",
    "voicegrow-redis": "redis",
    "voicegrow-minio": "minio",
    "voicegrow-server-1": "voicegrow_server",
    "proxy": "proxy",
    "proxy-acme": "acme",
    "backup": "backup",
    "healer": "healer",
}


def _services(evaluation: Evaluation) -> list[Declared]:
    return [container for container in evaluation.mocks.of_type(CONTAINER) if container.value("wait")]


def _preparations(evaluation: Evaluation) -> list[Declared]:
    return [container for container in evaluation.mocks.of_type(CONTAINER) if container.name.endswith("-files")]


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_drops_every_capability_and_cannot_gain_privileges(evaluate: Evaluate, stack: str) -> None:
    containers = evaluate(stack).mocks.of_type(CONTAINER)
    assert containers
    for container in containers:
        assert container.value("capabilities")["drops"] == ["ALL"], container.name
        assert container.value("securityOpts") == ["no-new-privileges"], container.name


@pytest.mark.parametrize(
    ("name", "added"),
    [(name, []) for name in ROLES if name != "backup"] + [("backup", ["CHOWN", "DAC_OVERRIDE", "FOWNER"])],
)
def test_each_role_gets_back_only_the_capabilities_it_needs(evaluate: Evaluate, name: str, added: list[str]) -> None:
    assert (evaluate("prod").container(name).value("capabilities").get("adds") or []) == added


@pytest.mark.parametrize("stack", STACKS)
def test_services_run_on_a_read_only_root_filesystem_except_the_backup_job_and_monitoring(
    evaluate: Evaluate, stack: str
) -> None:
    # Both have their files uploaded into the root filesystem, which Docker refuses when it is
    # read-only; the engine API filter, which holds the engine's socket, gets its file in a volume.
    for container in _services(evaluate(stack)):
        writable = container.name == "backup" or (container.name.startswith("monitoring-") and container.name != "monitoring-engine-api")
        assert container.value("readOnly") is not writable, container.name


@pytest.mark.parametrize(
    ("name", "user"),
    [
        ("synapse-postgres", "999:999"),
        ("synapse", "991:991"),
        ("synapse-wellknown", "101:101"),
        ("voicegrow-mysql", "999:999"),
        ("voicegrow-redis", "999:999"),
        ("voicegrow-minio", "1000:1000"),
        ("proxy", "101:101"),
        ("proxy-acme", "101:101"),
        # Root only to open the engine's root-owned socket; it holds no capability (above).
        ("healer", "0:0"),
    ],
)
def test_services_run_as_their_images_unprivileged_user(evaluate: Evaluate, name: str, user: str) -> None:
    assert evaluate("prod").container(name).value("user") == user


@pytest.mark.parametrize(
    ("name", "paths"),
    [
        ("synapse-postgres", {"/tmp", "/var/run/postgresql"}),
        ("voicegrow-mysql", {"/tmp", "/var/run/mysqld"}),
        ("proxy", {"/tmp", "/run"}),
        ("proxy-acme", {"/tmp", "/var/lib/letsencrypt", "/var/log/letsencrypt"}),
        ("voicegrow-server-1", {"/tmp"}),
    ],
)
def test_services_write_outside_their_volumes_only_to_tmpfs(evaluate: Evaluate, name: str, paths: set[str]) -> None:
    assert set(evaluate("prod").container(name).value("tmpfs")) == paths


def test_tmpfs_belongs_to_the_service_user_alone(evaluate: Evaluate) -> None:
    assert evaluate("prod").container("proxy").value("tmpfs") == {
        "/tmp": "uid=101,gid=101,mode=0700", "/run": "uid=101,gid=101,mode=0700"
    }


@pytest.mark.parametrize("name", ["synapse-postgres", "voicegrow-mysql", "voicegrow-redis"])
def test_databases_get_descriptors_and_no_core_dumps(evaluate: Evaluate, name: str) -> None:
    ulimits = {limit["name"]: (limit["soft"], limit["hard"]) for limit in evaluate("prod").container(name).value("ulimits")}
    assert ulimits == {"nofile": (16384, 16384), "core": (0, 0)}


@pytest.mark.parametrize("stack", STACKS)
def test_every_service_gets_a_process_limit_once_it_runs(evaluate: Evaluate, stack: str) -> None:
    # The provider has no pids_limit: Docker's update sets it on the container the provider made.
    evaluation = evaluate(stack)
    for container in _services(evaluation):
        limit = evaluation.mocks.named(f"{container.name}-pids-limit", COMMAND)
        assert limit.value("create").startswith("docker update --pids-limit "), container.name
        assert limit.value("create").endswith(f" {container.value('name')}"), container.name
        assert limit.value("triggers") == [f"{container.name}-id"], container.name


@pytest.mark.parametrize(("name", "pids"), [("synapse-postgres", 256), ("proxy", 64), ("voicegrow-server-1", 512)])
def test_process_limits_follow_the_role(evaluate: Evaluate, name: str, pids: int) -> None:
    create = evaluate("prod").mocks.named(f"{name}-pids-limit", COMMAND).value("create")
    assert create == f"docker update --pids-limit {pids} selfhosted-prod-{name}"


@pytest.mark.parametrize("stack", STACKS)
def test_files_are_prepared_without_network_and_handed_over_read_only(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack)
    preparations = _preparations(evaluation)
    assert preparations
    for preparation in preparations:
        service = evaluation.container(preparation.name.removesuffix("-files"))
        assert preparation.value("networkMode") == "none", preparation.name
        assert preparation.value("attach") is True and preparation.value("mustRun") is False, preparation.name
        assert {upload["permissions"] for upload in preparation.value("uploads")} <= {"0400"}, preparation.name
        owner = service.value("user") or "0:0"
        assert re.search(rf"chown (-R )?{owner} ", preparation.value("entrypoints")[-1]), preparation.name


def test_a_changed_file_replaces_the_service_that_reads_it(evaluate: Evaluate) -> None:
    # The service carries its preparation's id: a new preparation is a new label value.
    labels = {label["label"]: label["value"] for label in evaluate("prod").container("proxy").value("labels")}
    assert labels["selfhosted.files"] == "proxy-files-id"


def test_a_role_can_be_relaxed_for_an_operators_image(evaluate: Evaluate) -> None:
    relaxed = {"voicegrow_server": {"read_only": False, "user": "1000:1000", "capabilities": ["NET_BIND_SERVICE"], "pids_limit": 1024}}
    evaluation = evaluate("prod", overrides={"security": relaxed})
    server = evaluation.container("voicegrow-server-1")
    assert server.value("readOnly") is False and server.value("user") == "1000:1000"
    assert server.value("capabilities") == {"drops": ["ALL"], "adds": ["NET_BIND_SERVICE"]}
    assert "--pids-limit 1024 " in evaluation.mocks.named("voicegrow-server-1-pids-limit", COMMAND).value("create")


def test_relaxing_an_unknown_role_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match="selfhosted:security.server is not a container role"):
        evaluate("prod", overrides={"security": {"server": {"read_only": False}}})


def test_an_unknown_capability_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:security\.voicegrow_server\.capabilities must be of CHOWN"):
        evaluate("prod", overrides={"security": {"voicegrow_server": {"capabilities": ["SYS_ADMIN"]}}})
