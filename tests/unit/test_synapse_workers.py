"""Synapse with workers under Pulumi mocks: which containers and routes each profile declares, Redis
never published, its secrets secret, and the single-process stacks unchanged."""

from __future__ import annotations

import re

import pytest
import yaml

from config.profiles import LARGE, MEDIUM, synapse_workers
from tests.unit.conftest import Evaluate, Evaluation

# staging runs the medium profile, prod the large one; dev and test the small one. Workers are on
# by default on large only; the medium stacks here turn them on.
WORKERS_ON = {"synapse": {"workers": True}}
WORKER_STACKS = {"staging": MEDIUM, "prod": LARGE}
CONTAINER = "docker:index/container:Container"


def _services(evaluation: Evaluation) -> set[str]:
    return {resource.name for resource in evaluation.mocks.of_type(CONTAINER) if not resource.name.endswith("-files")}


def _homeserver(evaluation: Evaluation, container: str = "synapse") -> dict:
    return yaml.safe_load(evaluation.mocks.files(container)["/config/homeserver.yaml"])


def _proxy_conf(evaluation: Evaluation) -> str:
    return evaluation.mocks.files("proxy")["/etc/nginx/conf.d/default.conf"]


@pytest.mark.parametrize(("stack", "profile"), WORKER_STACKS.items())
def test_medium_and_large_run_redis_and_every_worker_of_their_plan(evaluate: Evaluate, stack: str, profile: object) -> None:
    services = _services(evaluate(stack, overrides=WORKERS_ON))
    expected = {"synapse-redis"} | {f"synapse-{worker.name.replace('_', '-')}" for worker in synapse_workers(profile.synapse_workers)}
    assert expected <= services
    assert {name for name in services if name.startswith("synapse-") and name not in expected} == {"synapse-postgres", "synapse-wellknown"}


def test_medium_runs_two_sync_workers_and_large_three_with_two_event_persisters(evaluate: Evaluate) -> None:
    staging, prod = _services(evaluate("staging", overrides=WORKERS_ON)), _services(evaluate("prod"))
    assert {"synapse-sync1", "synapse-sync2"} <= staging and "synapse-sync3" not in staging
    assert not any(name.startswith("synapse-event-persister") for name in staging)
    assert {"synapse-sync3", "synapse-event-persister1", "synapse-event-persister2"} <= prod


@pytest.mark.parametrize("stack", ["dev", "test"])
def test_small_runs_one_synapse_process_without_redis(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack)
    assert {name for name in _services(evaluation) if name.startswith("synapse")} == {"synapse", "synapse-postgres", "synapse-wellknown"}
    homeserver = _homeserver(evaluation)
    assert not {"instance_map", "redis", "stream_writers", "worker_replication_secret_path"} & set(homeserver)
    assert [listener["port"] for listener in homeserver["listeners"]] == [8008]


def test_medium_runs_one_synapse_process_unless_workers_are_turned_on(evaluate: Evaluate) -> None:
    evaluation = evaluate("staging")
    assert not any(name.startswith(("synapse-sync", "synapse-redis")) for name in _services(evaluation))
    assert "instance_map" not in _homeserver(evaluation)
    assert "synapse_sync" not in _proxy_conf(evaluation)


def test_workers_can_be_turned_on_for_the_small_profile_with_room_for_their_connections(evaluate: Evaluate) -> None:
    overrides = {"synapse": {"workers": True}, "resources": {"postgres": {"memory": "512M"}}}
    assert "synapse-sync1" in _services(evaluate("test", overrides=overrides))


@pytest.mark.parametrize("workers", [True, False])
def test_turning_workers_on_or_off_keeps_the_data_volumes(evaluate: Evaluate, workers: bool) -> None:
    evaluation = evaluate("staging", overrides={"synapse": {"workers": workers}})
    assert evaluation.container("synapse").value("volumes")[0] == {
        "volumeName": "selfhosted-staging-synapse-data",
        "containerPath": "/data",
    }
    assert evaluation.container("synapse-postgres").value("volumes")[0]["volumeName"] == "selfhosted-staging-synapse-postgres"


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_redis_is_never_published(evaluate: Evaluate, stack: str) -> None:
    redis = evaluate(stack, overrides=WORKERS_ON).container("synapse-redis")
    assert not redis.value("ports")
    assert [network["aliases"] for network in redis.value("networksAdvanced")] == [["synapse-redis"]]


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_no_worker_is_published(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack, overrides=WORKERS_ON)
    for worker in synapse_workers(WORKER_STACKS[stack].synapse_workers):
        assert not evaluation.container(f"synapse-{worker.name.replace('_', '-')}").value("ports"), worker.name


def test_redis_password_and_replication_secret_are_generated_and_secret(evaluate: Evaluate) -> None:
    evaluation = evaluate("staging", overrides=WORKERS_ON)
    for container in ("synapse-redis", "synapse", "synapse-sync1"):
        assert evaluation.mocks.named(f"{container}-files").is_secret("uploads"), container
    files = evaluation.mocks.files("synapse")
    assert files["/config/redis_password"] == evaluation.mocks.files("synapse-redis")["/usr/local/etc/redis/password"]
    assert files["/config/worker_replication_secret"] == evaluation.mocks.files("synapse-sync1")["/config/worker_replication_secret"]
    assert "requirepass" in evaluation.mocks.files("synapse-redis")["/usr/local/etc/redis/redis.conf"]


def test_each_worker_has_the_worker_limits_its_own_health_check_and_restart_policy(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    for worker in synapse_workers(LARGE.synapse_workers):
        container = evaluation.container(f"synapse-{worker.name.replace('_', '-')}")
        assert container.value("memory") == LARGE.limits["synapse_worker"].memory_mb, worker.name
        assert container.value("cpuShares") == LARGE.limits["synapse_worker"].cpu_weight, worker.name
        assert "http://localhost:8008/health" in container.value("healthcheck")["tests"], worker.name
        assert container.value("restart") == "unless-stopped", worker.name


def test_each_worker_reads_the_shared_config_then_its_own(evaluate: Evaluate) -> None:
    evaluation = evaluate("staging", overrides=WORKERS_ON)
    command = evaluation.container("synapse-media1").value("command")
    assert command == [
        "run", "-m", "synapse.app.media_repository", "--config-path", "/config/homeserver.yaml", "--config-path", "/config/worker.yaml",
    ]
    worker = yaml.safe_load(evaluation.mocks.files("synapse-media1")["/config/worker.yaml"])
    assert (worker["worker_name"], worker["worker_listeners"][0]["resources"][0]["names"]) == ("media1", ["media"])
    assert _homeserver(evaluation, "synapse-media1") == _homeserver(evaluation)


def test_only_the_media_repository_writes_the_data_volume(evaluate: Evaluate) -> None:
    evaluation = evaluate("staging", overrides=WORKERS_ON)
    assert not evaluation.container("synapse-media1").value("volumes")[0].get("readOnly")
    assert evaluation.container("synapse-sync1").value("volumes")[0]["readOnly"] is True


def test_shared_config_names_the_duties_and_the_event_persisters(evaluate: Evaluate) -> None:
    homeserver = _homeserver(evaluate("prod"))
    assert homeserver["instance_map"]["main"] == {"host": "synapse", "port": 9093}
    assert homeserver["stream_writers"] == {"events": ["event_persister1", "event_persister2"]}
    assert set(homeserver["instance_map"]) == {"main", "event_persister1", "event_persister2"}
    assert (homeserver["federation_sender_instances"], homeserver["pusher_instances"]) == (["federation_sender1"], ["pusher1"])
    assert homeserver["run_background_tasks_on"] == "background1"
    assert homeserver["media_instance_running_background_jobs"] == "media1"
    assert homeserver["enable_media_repo"] is False


def test_workers_fit_postgres_connections(evaluate: Evaluate) -> None:
    # Each process opens its own pool: the main process's and the workers' smaller ones.
    evaluation = evaluate("prod")
    max_connections = int(re.search(r"max_connections=(\d+)", " ".join(evaluation.container("synapse-postgres").value("command"))).group(1))
    worker = yaml.safe_load(evaluation.mocks.files("synapse-sync1")["/config/worker.yaml"])
    processes = len(synapse_workers(LARGE.synapse_workers))
    assert LARGE.synapse.db_pool_max + processes * worker["database"]["args"]["cp_max"] < max_connections


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_proxy_sends_sync_to_the_sync_workers_hashed_by_user(evaluate: Evaluate, stack: str) -> None:
    conf = _proxy_conf(evaluate(stack, overrides=WORKERS_ON))
    assert 'location ~ "^/_matrix/client/(r0|v3)/sync$" {\n        proxy_pass http://synapse_sync;' in conf
    upstream = re.search(r"upstream synapse_sync \{(.*?)\}", conf, re.S).group(1)
    assert "hash $synapse_user consistent;" in upstream
    assert upstream.count("server synapse-sync") == WORKER_STACKS[stack].synapse_workers.sync_workers


def test_proxy_sends_media_to_the_media_repository_and_the_rest_to_the_main_process(evaluate: Evaluate) -> None:
    conf = _proxy_conf(evaluate("staging", overrides=WORKERS_ON))
    assert 'location ~ "^/_matrix/media/" {\n        proxy_pass http://synapse_media;' in conf
    assert "location ~ ^(/_matrix|/_synapse/client) {\n        proxy_pass http://synapse;" in conf
    # Regular expressions match in order: every worker's location comes before the main process's.
    assert conf.rindex("http://synapse_") < conf.index("location ~ ^(/_matrix|/_synapse/client)")


def test_the_admin_api_is_never_routed_to_a_worker(evaluate: Evaluate) -> None:
    conf = _proxy_conf(evaluate("prod"))
    assert not re.search(r'location ~ "[^"]*/_synapse/admin', conf)
