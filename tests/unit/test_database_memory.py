"""Database memory: what PostgreSQL, MySQL and Redis may use must fit their container's limit."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, resolve_settings
from config.profiles import LARGE, MEDIUM, PROFILES, SMALL, size_mb
from tests.program import STACKS
from tests.unit.conftest import Evaluate
from tests.stack_config import ALERT_RECEIVERS

SYNAPSE = {"server_name": "example.com", "admin_username": "admin"}
VOICEGROW = {"enabled": True, "server_image": "registry.example.com/voicegrow/server:1.0.0"}


def _raw(**raw: Any) -> dict[str, Any]:
    raw.setdefault("synapse", SYNAPSE)
    raw.setdefault("proxy", {"acme_email": "ops@example.com"})
    raw.setdefault("monitoring", ALERT_RECEIVERS)
    raw.setdefault("voicegrow", VOICEGROW)
    return raw


def _problems(**raw: Any) -> str:
    with pytest.raises(ConfigError) as error:
        resolve_settings("selfhosted", "prod", _raw(**raw))
    return str(error.value)


def _accepted(**raw: Any) -> None:
    resolve_settings("selfhosted", "prod", _raw(**raw))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_deploys_with_every_profile(evaluate: Evaluate, stack: str, profile: str) -> None:
    overrides = {"profile": profile, "voicegrow": VOICEGROW}
    assert evaluate(stack, overrides=overrides).mocks.of_type("docker:index/container:Container")


@pytest.mark.parametrize(("text", "megabytes"), [("96MB", 96), ("256M", 256), ("1G", 1024), ("96mb", 96), ("1536MB", 1536), ("512kB", 0.5)])
def test_sizes_are_read_in_each_servers_units(text: str, megabytes: float) -> None:
    assert size_mb(text) == megabytes


@pytest.mark.parametrize(("profile", "needed"), [(SMALL, 316), (MEDIUM, 640), (LARGE, 1272)])
def test_postgres_counts_buffers_autovacuum_the_connections_opened_and_the_server(profile: Any, needed: int) -> None:
    # shared_buffers + 3 x maintenance_work_mem + (pool + 3) x (work_mem + 8 MB) + 64 MB
    connections = profile.synapse.db_pool_max + 3
    assert profile.postgres.memory_needed_mb(connections) == needed


def test_mysql_counts_the_buffer_pool_each_connections_buffers_and_the_server() -> None:
    # 256 MB + 200 x 944 KB + 64 MB
    assert SMALL.voicegrow.mysql_memory_needed_mb(200) == 505


def test_redis_maxmemory_takes_at_most_three_quarters_of_its_container() -> None:
    assert SMALL.voicegrow.redis_memory_needed_mb() == 128


def test_too_many_mysql_connections_are_refused_naming_both_keys() -> None:
    problems = _problems(profile="small", voicegrow={**VOICEGROW, "mysql": {"max_connections": 300}})
    assert "selfhosted:resources.mysql.memory (512 MB) is less than MySQL can use" in problems
    assert "voicegrow.mysql.max_connections 300" in problems


def test_mysql_connections_beyond_the_limit_say_how_much_memory_they_need() -> None:
    problems = _problems(profile="small", voicegrow={**VOICEGROW, "mysql": {"max_connections": 300}})
    assert (
        "innodb_buffer_pool_size 256M (profile 'small') + voicegrow.mysql.max_connections 300 x 944 KB of "
        "connection buffers + 64 MB = 597 MB: set resources.mysql.memory to at least 597M or lower "
        "voicegrow.mysql.max_connections"
    ) in problems


def test_raising_the_mysql_limit_makes_room_for_more_connections() -> None:
    _accepted(profile="small", voicegrow={**VOICEGROW, "mysql": {"max_connections": 300}}, resources={"mysql": {"memory": "600M"}})


def test_postgres_limit_below_its_settings_is_refused_naming_the_limit_and_the_profile() -> None:
    problems = _problems(profile="medium", resources={"postgres": {"memory": "512M"}}, synapse={**SYNAPSE, "workers": False})
    assert "selfhosted:resources.postgres.memory (512 MB) is less than PostgreSQL can use with profile 'medium'" in problems
    assert "= 640 MB: set resources.postgres.memory to at least 640M" in problems


def test_the_pools_of_synapse_workers_count_against_postgres_memory() -> None:
    # Medium's seven workers open two connections each beside the main process's five.
    problems = _problems(profile="medium", synapse={**SYNAPSE, "workers": True}, resources={"postgres": {"memory": "640M"}})
    assert "22 connections (profile 'medium' database pool 5 + 14 of synapse.workers' pools + 3 others)" in problems
    assert "= 864 MB: set resources.postgres.memory to at least 864M or turn synapse.workers off" in problems


def test_a_larger_synapse_pool_in_extra_config_counts_against_postgres_memory() -> None:
    extra = {"database": {"args": {"cp_max": 40}}}
    problems = _problems(profile="small", synapse={**SYNAPSE, "extra_config": extra})
    assert "43 connections (synapse.extra_config database.args.cp_max 40 + 3 others)" in problems
    assert "or lower synapse.extra_config database.args.cp_max" in problems


def test_redis_limit_without_room_above_maxmemory_is_refused_naming_the_limit_and_the_profile() -> None:
    problems = _problems(profile="small", resources={"redis": {"memory": "127M"}})
    assert "selfhosted:resources.redis.memory (127 MB) leaves too little room above Redis's maxmemory 96mb (profile 'small')" in problems
    assert "copy-on-write" in problems and "set resources.redis.memory to at least 128M" in problems


def test_redis_limit_of_exactly_four_thirds_of_maxmemory_is_accepted() -> None:
    _accepted(profile="small", resources={"redis": {"memory": "128M"}})


def test_a_disabled_component_is_not_checked() -> None:
    _accepted(
        synapse={**SYNAPSE, "enabled": False},
        voicegrow={**VOICEGROW, "enabled": False, "server_image": None},
        resources={"postgres": {"memory": "64M"}, "mysql": {"memory": "64M"}, "redis": {"memory": "16M"}},
    )


def test_every_memory_problem_is_reported() -> None:
    problems = _problems(profile="large", resources={"mysql": {"memory": "1G"}, "redis": {"memory": "256M"}})
    assert "resources.mysql.memory (1024 MB)" in problems and "selfhosted:resources.redis.memory (256 MB)" in problems
