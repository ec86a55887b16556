"""The policy pack (policy/): every resource each stack declares passes every policy; a crafted violation of
each policy is reported, naming the resource; a preview of each stack with the pack, as the workflow runs it,
has no mandatory violation."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

from policy import rules
from tests.policy_preview import Registered, declared, preview_with_policies, validation_args
from tests.program import ROOT, STACKS
from tests.unit.mocks import RecordingMocks

VALIDATIONS = rules.VALIDATIONS
SWARM = {
    "orchestrator": "swarm", "swarm": {"nodes": {"node-1": ["data", "app", "ingress"]}}, "monitoring": {"level": "basic"},
    "tls": "self-signed", "voicegrow": {"secret_files": True},
}

_declared: dict[str, list[Registered]] = {}


def declared_by(stack: str) -> list[Registered]:
    """The stack's resources under mocks (preview=False: every value known), evaluated once per module."""
    if stack not in _declared:
        _declared[stack] = declared(RecordingMocks(), stack, preview=False)
    return _declared[stack]


def crafted(
    resource_type: str, name: str, props: dict[str, Any], stack: str = "prod", protect: bool = False,
    config: dict[str, Any] | None = None,
) -> ResourceValidationArgs:
    options = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    urn = f"urn:pulumi:{stack}::selfhosted::{resource_type}::{name}"
    return ResourceValidationArgs(resource_type, props, urn, name, options, None, config)


def container(**changes: Any) -> dict[str, Any]:
    """A container's inputs that pass every policy, with `changes` (None removes a property)."""
    props: dict[str, Any] = {
        "image": "sha256:0123",
        "memory": 512,
        "cpus": "0.5",
        "restart": "unless-stopped",
        "healthcheck": {"tests": ["CMD", "true"], "interval": "10s"},
        "logDriver": "json-file",
        "logOpts": {"max-size": "10m", "max-file": "3"},
        "labels": [{"label": "selfhosted.role", "value": "postgres"}],
        "ports": [],
        "envs": ["POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password"],
    }
    props.update(changes)
    return {key: value for key, value in props.items() if value is not None}


def reports(validation: Callable[..., None], args: ResourceValidationArgs) -> list[str]:
    found: list[str] = []
    validation(args, lambda message, urn=None: found.append(message))
    return found


def test_the_pack_is_all_mandatory_policies_with_a_plain_validation_each() -> None:
    assert [policy.name for policy in rules.POLICIES] == list(VALIDATIONS)
    assert {policy.enforcement_level for policy in rules.POLICIES} == {rules.EnforcementLevel.MANDATORY}


def test_the_pack_started_as_the_cli_starts_it_serves_its_mandatory_policies() -> None:
    """The CLI runs policy/ with Python and talks to the analyzer at the port it prints."""
    process = subprocess.Popen([sys.executable, "policy"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline()) if process.stdout else 0
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    finally:
        process.kill()
        process.wait()
    assert info.name == "selfhosted"
    assert [(policy.name, policy.enforcementLevel) for policy in info.policies] == [
        (name, analyzer_pb2.MANDATORY) for name in VALIDATIONS
    ]


def test_the_pack_runs_with_the_programs_pulumi() -> None:
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line)
    pack = dict(line.split("==") for line in (ROOT / "policy" / "requirements.txt").read_text().splitlines())
    assert pack == {"pulumi": pins["pulumi"], "pulumi-policy": pins["pulumi-policy"]}
    assert yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())["runtime"]["name"] == "python"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("policy", list(VALIDATIONS))
def test_every_declared_resource_passes(stack: str, policy: str) -> None:
    resources = declared_by(stack)
    assert {rules.CONTAINER, rules.VOLUME, rules.REMOTE_IMAGE} <= {resource.request.type for resource in resources}
    found = [message for resource in resources for message in reports(VALIDATIONS[policy], validation_args(resource))]
    assert found == []


@pytest.mark.parametrize("policy", list(VALIDATIONS))
def test_every_resource_of_a_prod_stack_on_swarm_passes(policy: str) -> None:
    if "swarm" not in _declared:
        _declared["swarm"] = declared(RecordingMocks(), "prod", preview=False, overrides=SWARM)
    resources = _declared["swarm"]
    assert rules.SERVICE in {resource.request.type for resource in resources}
    found = [message for resource in resources for message in reports(VALIDATIONS[policy], validation_args(resource))]
    assert found == []


def service(**changes: Any) -> dict[str, Any]:
    """A Swarm service's inputs that pass every policy, with `changes` to its task (None removes a part)."""
    task: dict[str, Any] = {
        "containerSpec": {"image": "sha256:0123", "healthcheck": {"tests": ["CMD", "true"]}, "env": {}},
        "resources": {"limits": {"memoryBytes": 512 * 1024 * 1024}},
        "restartPolicy": {"condition": "any"},
        "logDriver": {"name": "json-file", "options": {"max-size": "10m", "max-file": "3"}},
    }
    task.update(changes)
    props = {"labels": [{"label": "selfhosted.role", "value": "postgres"}], "taskSpec": {k: v for k, v in task.items() if v is not None}}
    return props


@pytest.mark.parametrize(
    ("validation", "props", "message"),
    [
        (rules.container_limits, service(resources={"limits": {}}), "voicegrow-server-1: no memory limit"),
        (rules.container_health_check, service(containerSpec={"image": "sha256:0123"}), "voicegrow-server-1: no health check"),
        (rules.container_restart_policy, service(restartPolicy={"condition": "none"}), "voicegrow-server-1: restart policy 'no'"),
        (rules.container_log_rotation, service(logDriver=None), "voicegrow-server-1: log not rotated"),
        (rules.secrets_in_files, service(containerSpec={"image": "x", "env": {"POSTGRES_PASSWORD": "p"}}), "POSTGRES_PASSWORD is in the environment"),
        (rules.pinned_images, service(containerSpec={"image": "nginx:latest"}), "image 'nginx:latest' is tagged latest"),
        (rules.no_public_data_ports, {**service(), "endpointSpec": {"ports": [{"targetPort": 5432, "publishedPort": 5432}]}}, "PostgreSQL port 5432 is published on 0.0.0.0:5432"),
    ],
)
def test_a_swarm_service_is_held_to_the_same_policies(validation: Callable[..., None], props: dict[str, Any], message: str) -> None:
    found = reports(validation, crafted(rules.SERVICE, "voicegrow-server-1", props))
    assert len(found) == 1 and message in found[0], found


def test_a_swarm_service_without_a_cpu_cap_passes_as_swarm_has_no_weights() -> None:
    assert reports(rules.container_limits, crafted(rules.SERVICE, "synapse", service())) == []


@pytest.mark.parametrize("stack", STACKS)
def test_a_preview_of_each_stack_with_the_pack_has_no_mandatory_violation(stack: str) -> None:
    diagnostics = preview_with_policies(RecordingMocks(), stack)
    assert [d for d in diagnostics if d.mandatory] == []


def test_a_prod_stack_whose_certificate_is_a_file_of_the_stack_passes() -> None:
    """Its proxy-tls volume holds the stack's self-signed certificate, written again on every change; with acme,
    a volume of that name holds copies of certbot's certificates (kept on the protected proxy-letsencrypt)."""
    diagnostics = preview_with_policies(RecordingMocks(), "prod", overrides={"tls": "self-signed"})
    assert [d for d in diagnostics if d.mandatory] == []


def test_a_preview_reports_what_a_stack_file_gets_wrong() -> None:
    # The settings refuse `latest` for a staging environment before the policies run; the pack
    # holds the stack named staging to the rule whatever environment its file says.
    overrides = {"environment": "test", "images": {"redis": "redis:latest"}}
    diagnostics = preview_with_policies(RecordingMocks(), "staging", overrides=overrides)
    # (A test environment's volumes are not protected either: that policy reports them too.)
    mandatory = [d for d in diagnostics if d.mandatory and d.policy != "protected-data-volumes"]
    # VoiceGrow's Redis runs images.redis (Synapse's too, with workers, which medium leaves off).
    assert sorted((d.policy, d.urn.rsplit("::", 1)[1]) for d in mandatory) == [("pinned-images", "voicegrow-redis-image")]
    assert any("voicegrow-redis-image: image 'redis:latest' is tagged latest" in d.message for d in mandatory)


@pytest.mark.parametrize(
    "port",
    [
        {"internal": 5432, "external": 5432, "ip": "0.0.0.0"},
        {"internal": 5432, "external": 15432},
        {"internal": 5432, "external": 5432, "ip": "203.0.113.7"},
    ],
)
def test_a_database_port_on_a_public_interface_is_reported(port: dict[str, Any]) -> None:
    found = reports(rules.no_public_data_ports, crafted(rules.CONTAINER, "synapse-postgres", container(ports=[port])))
    assert len(found) == 1 and found[0].startswith("synapse-postgres: PostgreSQL port 5432 is published on")


def test_a_cache_port_is_reported_whatever_the_containers_role() -> None:
    args = crafted(rules.CONTAINER, "cache", container(labels=None, ports=[{"internal": 6379, "external": 6379}]))
    assert reports(rules.no_public_data_ports, args) == [
        "cache: Redis port 6379 is published on 0.0.0.0:6379; publish it on 127.0.0.1 or not at all"
    ]


def test_an_object_store_port_on_loopback_passes() -> None:
    port = {"internal": 9000, "external": 9000, "ip": "127.0.0.1"}
    args = crafted(rules.CONTAINER, "voicegrow-minio", container(ports=[port]))
    assert reports(rules.no_public_data_ports, args) == []


@pytest.mark.parametrize(
    ("missing", "message"), [("memory", "no memory limit (memory)"), ("cpus", "no CPU limit (cpus or cpuShares)")]
)
def test_a_container_without_a_limit_is_reported(missing: str, message: str) -> None:
    args = crafted(rules.CONTAINER, "synapse", container(**{missing: None}))
    assert reports(rules.container_limits, args) == [f"synapse: {message}"]


def test_a_cpu_weight_instead_of_a_cap_passes() -> None:
    args = crafted(rules.CONTAINER, "synapse", container(cpus=None, cpuShares=2048))
    assert reports(rules.container_limits, args) == []


def test_a_container_without_a_health_check_is_reported() -> None:
    args = crafted(rules.CONTAINER, "synapse", container(healthcheck=None))
    assert reports(rules.container_health_check, args) == ["synapse: no health check (healthcheck.tests)"]


def test_a_container_without_a_health_check_passes_only_where_the_operator_exempts_it() -> None:
    unchecked = container(healthcheck=None)
    assert reports(rules.container_health_check, crafted(rules.CONTAINER, "monitoring-redis-exporter", unchecked))
    exempted = crafted(rules.CONTAINER, "monitoring-redis-exporter", unchecked, config={"unchecked": ["monitoring-redis-exporter"]})
    assert reports(rules.container_health_check, exempted) == []


def test_a_one_shot_container_needs_no_health_check_or_restart_policy() -> None:
    args = crafted(rules.CONTAINER, "proxy-files", container(healthcheck=None, restart=None, mustRun=False))
    assert reports(rules.container_health_check, args) + reports(rules.container_restart_policy, args) == []


def test_a_container_that_does_not_restart_is_reported() -> None:
    args = crafted(rules.CONTAINER, "proxy", container(restart="no"))
    assert reports(rules.container_restart_policy, args) == [
        "proxy: restart policy 'no'; use one of always, unless-stopped, on-failure"
    ]


@pytest.mark.parametrize("changes", [{"logOpts": None}, {"logDriver": None}, {"logOpts": {"max-size": "10m"}}])
def test_a_container_whose_log_is_not_rotated_is_reported(changes: dict[str, Any]) -> None:
    found = reports(rules.container_log_rotation, crafted(rules.CONTAINER, "proxy", container(**changes)))
    assert len(found) == 1 and found[0].startswith("proxy: log not rotated")


@pytest.mark.parametrize(
    ("resource_type", "key", "reference", "reason"),
    [
        (rules.REMOTE_IMAGE, "name", "redis", "has no tag (Docker takes latest)"),
        (rules.REMOTE_IMAGE, "name", "registry.example.com:5000/voicegrow/server", "has no tag (Docker takes latest)"),
        (rules.BUILT_IMAGE, "imageName", "selfhosted-prod-backup:latest", "is tagged latest"),
        (rules.CONTAINER, "image", "nginx:latest", "is tagged latest"),
    ],
)
def test_an_unpinned_image_in_prod_is_reported(resource_type: str, key: str, reference: str, reason: str) -> None:
    args = crafted(resource_type, "redis-image", {key: reference})
    assert reports(rules.pinned_images, args) == [f"redis-image: image '{reference}' {reason}; pin a version tag or a digest"]


def test_a_digest_pins_an_image() -> None:
    args = crafted(rules.REMOTE_IMAGE, "redis-image", {"name": "redis@sha256:" + "a" * 64})
    assert reports(rules.pinned_images, args) == []


def test_dev_may_run_latest_images() -> None:
    assert reports(rules.pinned_images, crafted(rules.REMOTE_IMAGE, "redis-image", {"name": "redis:latest"}, stack="dev")) == []


def test_the_production_stacks_are_set_by_the_policy_config() -> None:
    args = crafted(rules.REMOTE_IMAGE, "redis-image", {"name": "redis:latest"}, stack="prod-eu", config={"stacks": ["prod-eu"]})
    assert len(reports(rules.pinned_images, args)) == 1


def test_an_unprotected_data_volume_in_staging_is_reported() -> None:
    args = crafted(rules.VOLUME, "synapse-postgres-volume", {"name": "selfhosted-staging-synapse-postgres"}, stack="staging")
    assert reports(rules.protected_data_volumes, args) == [
        "synapse-postgres-volume: data volume 'selfhosted-staging-synapse-postgres' is not protected (protect=True)"
    ]


def test_a_volume_of_files_written_on_every_change_need_not_be_protected() -> None:
    args = crafted(rules.VOLUME, "synapse-postgres-secrets-volume", {"name": "selfhosted-prod-synapse-postgres-secrets"})
    assert reports(rules.protected_data_volumes, args) == []


def test_an_unprotected_data_volume_in_dev_passes() -> None:
    args = crafted(rules.VOLUME, "synapse-postgres-volume", {"name": "selfhosted-dev-synapse-postgres"}, stack="dev")
    assert reports(rules.protected_data_volumes, args) == []


@pytest.mark.parametrize(
    ("role", "variable"),
    [
        ("postgres", "POSTGRES_PASSWORD"), ("mysql", "MYSQL_ROOT_PASSWORD"), ("mysql", "MYSQL_PASSWORD"), ("minio", "MINIO_ROOT_PASSWORD"),
        ("grafana", "GF_SECURITY_ADMIN_PASSWORD"), ("postgres-exporter", "DATA_SOURCE_NAME"), ("redis-exporter", "REDIS_PASSWORD"),
    ],
)
def test_a_secret_in_the_environment_of_an_image_that_reads_it_from_a_file_is_reported(role: str, variable: str) -> None:
    props = container(labels=[{"label": "selfhosted.role", "value": role}], envs=[f"{variable}=hunter2"])
    assert reports(rules.secrets_in_files, crafted(rules.CONTAINER, role, props)) == [
        f"{role}: {variable} is in the environment; pass the secret in a file ({variable}_FILE or the image's own)"
    ]


def test_a_secret_in_the_environment_of_the_voicegrow_servers_image_which_reads_it_there_only_passes() -> None:
    props = container(labels=[{"label": "selfhosted.role", "value": "server"}], envs=["MYSQL_PASSWORD=hunter2"])
    assert reports(rules.secrets_in_files, crafted(rules.CONTAINER, "voicegrow-server-1", props)) == []


@pytest.mark.parametrize(
    "variable", ["SMTP_PASSWORD", "WEBHOOK_SECRET", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY", "DATA_SOURCE_NAME"]
)
def test_any_variable_named_like_a_secret_is_reported_in_every_other_container(variable: str) -> None:
    props = container(labels=[{"label": "selfhosted.role", "value": "alertmanager"}], envs=[f"{variable}=hunter2", f"{variable}_FILE=/run/secrets/x"])
    assert reports(rules.secrets_in_files, crafted(rules.CONTAINER, "monitoring-alertmanager", props)) == [
        f"monitoring-alertmanager: {variable} names a secret in the environment; pass it in a file"
    ]


@pytest.mark.parametrize("variable", ["LLM_MAX_TOKENS", "GF_AUTH_DISABLE_LOGIN_FORM", "REDIS_PASSWORD_FILE", "GF_SECURITY_ADMIN_PASSWORD__FILE"])
def test_a_variable_that_names_no_secret_or_names_a_file_passes(variable: str) -> None:
    props = container(labels=[{"label": "selfhosted.role", "value": "grafana"}], envs=[f"{variable}=x"])
    assert reports(rules.secrets_in_files, crafted(rules.CONTAINER, "monitoring-grafana", props)) == []
