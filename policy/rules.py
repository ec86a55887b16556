"""The policies of the selfhosted policy pack: what the program promises, checked on every resource it declares.

Each policy is a CrossGuard `ResourceValidationPolicy` whose validation is a plain function of
`ResourceValidationArgs` and `report_violation`, so it can be called with any resource. Properties
are read as the provider receives them (wire names: `logOpts`, `healthcheck`, `ports[].ip`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
BUILT_IMAGE = "docker:index/image:Image"
VOLUME = "docker:index/volume:Volume"

STRICT_STACKS = ("staging", "prod")
"""Stacks held to the production rules (pinned images, protected data) unless the policy's config says otherwise."""

DATA_PORTS = {5432: "PostgreSQL", 3306: "MySQL", 6379: "Redis", 9000: "MinIO API", 9001: "MinIO console"}
"""Ports (inside the container) of the database, cache and object-store servers."""

DATA_ROLES = ("postgres", "mysql", "redis", "minio")
"""Roles (the `<project>.role` label) of the containers that run those servers."""

FILE_VARIABLES = {
    "postgres": ("POSTGRES_PASSWORD",),
    "mysql": ("MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD"),
    "minio": ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"),
    "grafana": ("GF_SECURITY_ADMIN_PASSWORD",),
    "postgres-exporter": ("DATA_SOURCE_NAME", "DATA_SOURCE_PASS"),
    "redis-exporter": ("REDIS_PASSWORD",),
}
"""Per image (by role), the secret variables the image also reads from a file (`<NAME>_FILE`, or
Grafana's `<NAME>__FILE`); the PostgreSQL exporter's DATA_SOURCE_NAME holds the password too."""

SECRET_NAME = re.compile(r"(^|_)(PASSWORD|PASSWD|SECRET|TOKEN|ACCESS_KEY|API_KEY|PRIVATE_KEY|DATA_SOURCE_NAME)$")
"""Names of variables that hold a secret in any image (`…_FILE` variables name files, and pass)."""

PLAIN_SECRET_ROLES: tuple[str, ...] = ("server",)
"""Roles whose image reads its secrets from the environment only: the VoiceGrow server, the
operator's own image, until it supports the `_FILE` convention (`voicegrow.secret_files`)."""

FILE_VOLUME_SUFFIXES = ("-config-volume", "-secrets-volume", "-script-volume", "-init-volume", "-tls-volume")
"""Logical names of the volumes that hold only files written again from the stack or from other volumes
(configuration, secrets, scripts; the proxy's certificate, from the stack or copied from certbot's own
volume): never data to protect."""

UNCHECKED_CONTAINERS: tuple[str, ...] = ()
"""Containers exempt from the health-check rule: none of the program's (an operator may list one
whose image has nothing to check with, and whose health is Prometheus's scrape of it)."""

RESTART_POLICIES = ("always", "unless-stopped", "on-failure")

Validation = Callable[[ResourceValidationArgs, ReportViolation], None]


def stack_of(urn: str) -> str:
    """The stack a resource belongs to, from its URN (`urn:pulumi:<stack>::<project>::<type>::<name>`)."""
    return urn.removeprefix("urn:pulumi:").split("::", 1)[0]


def is_strict(args: ResourceValidationArgs) -> bool:
    """Whether the resource's stack is held to the production rules (config `stacks`, default staging and prod)."""
    return stack_of(args.urn) in args.get_config().get("stacks", STRICT_STACKS)


MIB = 1024 * 1024
SWARM_RESTART = {"any": "always", "on-failure": "on-failure"}


def container_view(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The properties of what runs a service, in a container's terms: the container's own, or a
    Swarm service's translated (its task's image, limits, check, restart, log and environment;
    its ports, which Swarm publishes on every address). None for any other resource."""
    if resource_type == CONTAINER:
        return props
    if resource_type != SERVICE:
        return None
    task = props.get("taskSpec") or {}
    spec = task.get("containerSpec") or {}
    limits = (task.get("resources") or {}).get("limits") or {}
    log = task.get("logDriver") or {}
    return {
        "image": spec.get("image"),
        "labels": props.get("labels") or [],
        "memory": int(limits.get("memoryBytes") or 0) // MIB,
        "cpus": str(int(limits["nanoCpus"]) / 1e9) if limits.get("nanoCpus") else None,
        "healthcheck": spec.get("healthcheck"),
        "restart": SWARM_RESTART.get(str((task.get("restartPolicy") or {}).get("condition")), "no"),
        "logDriver": log.get("name"),
        "logOpts": log.get("options"),
        "envs": [f"{name}={value}" for name, value in (spec.get("env") or {}).items()],
        "ports": [
            {"internal": port.get("targetPort"), "external": port.get("publishedPort"), "ip": "0.0.0.0"}
            for port in (props.get("endpointSpec") or {}).get("ports") or []
        ],
    }


def role_of(props: Mapping[str, Any]) -> str | None:
    """The container's role, from its `<project>.role` label."""
    for label in props.get("labels") or []:
        if str(label.get("label", "")).endswith(".role"):
            return str(label.get("value"))
    return None


def is_one_shot(props: Mapping[str, Any]) -> bool:
    """A container that runs once and exits (`mustRun` false), such as one that prepares files."""
    return props.get("mustRun") is False


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def no_public_data_ports(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No database, cache or object-store port is published on an interface other than loopback."""
    props = container_view(args.resource_type, args.props)
    if props is None:
        return
    data_service = role_of(props) in DATA_ROLES
    for port in props.get("ports") or []:
        internal = int(port.get("internal", 0))
        # Docker publishes on every interface when no address is given.
        address = port.get("ip") or "0.0.0.0"
        if (data_service or internal in DATA_PORTS) and not is_loopback(address):
            service = DATA_PORTS.get(internal, role_of(props))
            report_violation(
                f"{args.name}: {service} port {internal} is published on {address}:{int(port.get('external', internal))}; "
                "publish it on 127.0.0.1 or not at all"
            )


def container_limits(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every container has a memory limit and a CPU limit: a hard cap, or a weight that says who
    wins when the cores are busy (the services on the request path have weights, not caps).
    Swarm has no CPU weights, so a service is held to its memory limit alone (its role's CPU cap,
    where it has one, is in its task's resources)."""
    props = container_view(args.resource_type, args.props)
    if props is None:
        return
    if not props.get("memory"):
        report_violation(f"{args.name}: no memory limit (memory)")
    if args.resource_type == CONTAINER and not props.get("cpus") and not props.get("cpuShares"):
        report_violation(f"{args.name}: no CPU limit (cpus or cpuShares)")


def container_health_check(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every long-running container has a health check (config `unchecked`: containers exempted by the operator)."""
    props = container_view(args.resource_type, args.props)
    if props is None or is_one_shot(props):
        return
    if args.name in args.get_config().get("unchecked", UNCHECKED_CONTAINERS):
        return
    check = props.get("healthcheck") or {}
    if not check.get("tests") or list(check["tests"]) == ["NONE"]:
        report_violation(f"{args.name}: no health check (healthcheck.tests)")


def container_restart_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every long-running container restarts after a crash and after the host reboots."""
    props = container_view(args.resource_type, args.props)
    if props is None or is_one_shot(props):
        return
    restart = props.get("restart") or "no"
    if restart not in RESTART_POLICIES:
        report_violation(f"{args.name}: restart policy '{restart}'; use one of {', '.join(RESTART_POLICIES)}")


def container_log_rotation(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every container's log is rotated: the json-file driver with max-size and max-file, or the local driver."""
    props = container_view(args.resource_type, args.props)
    if props is None:
        return
    driver = props.get("logDriver")
    options = props.get("logOpts") or {}
    if driver == "local":
        return
    if driver != "json-file" or not options.get("max-size") or not options.get("max-file"):
        report_violation(
            f"{args.name}: log not rotated (logDriver {driver or 'unset'}, logOpts {dict(options)}); "
            "use json-file with max-size and max-file"
        )


def unpinned_reason(reference: str) -> str | None:
    """Why an image reference is not pinned (no tag or digest, or `latest`), or None."""
    if "@sha256:" in reference:
        return None
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (Docker takes latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return "is tagged latest"
    return None


def pinned_images(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """In staging and prod, every image is pinned: a version tag or a digest, never `latest` or no tag."""
    references = {REMOTE_IMAGE: "name", BUILT_IMAGE: "imageName", CONTAINER: "image", SERVICE: "image"}
    if args.resource_type not in references or not is_strict(args):
        return
    props = container_view(args.resource_type, args.props) or args.props
    reference = str(props.get(references[args.resource_type]) or "")
    # A container given an image id runs exactly that image.
    if args.resource_type in (CONTAINER, SERVICE) and reference.startswith("sha256:"):
        return
    reason = unpinned_reason(reference)
    if reason:
        report_violation(f"{args.name}: image '{reference}' {reason}; pin a version tag or a digest")


def protected_data_volumes(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """In staging and prod, every data volume is protected: `pulumi destroy` or a replacement cannot delete it."""
    if args.resource_type != VOLUME or not is_strict(args):
        return
    if args.name.endswith(FILE_VOLUME_SUFFIXES) or args.opts.protect:
        return
    report_violation(f"{args.name}: data volume '{args.props.get('name')}' is not protected (protect=True)")


def secrets_in_files(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No secret in any container's plain environment (`docker inspect` shows it): neither a variable
    its image also reads from a file, nor any whose name says it is a secret (config
    `plain_secret_roles`: roles whose image reads the environment only)."""
    props = container_view(args.resource_type, args.props)
    if props is None:
        return
    role = role_of(props) or ""
    variables = FILE_VARIABLES.get(role, ())
    plain = role in args.get_config().get("plain_secret_roles", PLAIN_SECRET_ROLES)
    for entry in props.get("envs") or []:
        name = str(entry).split("=", 1)[0]
        if name in variables:
            report_violation(f"{args.name}: {name} is in the environment; pass the secret in a file ({name}_FILE or the image's own)")
        elif SECRET_NAME.search(name.upper()) and not plain:
            report_violation(f"{args.name}: {name} names a secret in the environment; pass it in a file")


def _policy(name: str, validate: Validation, config: Mapping[str, Mapping[str, Any]] | None = None) -> ResourceValidationPolicy:
    """A mandatory policy described by its validation's docstring."""
    return ResourceValidationPolicy(
        name=name,
        description=(validate.__doc__ or name).strip(),
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=PolicyConfigSchema(properties=dict(config)) if config else None,
    )


def _string_list(default: Iterable[str], description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "default": list(default), "description": description}


VALIDATIONS: Mapping[str, Validation] = {
    "no-public-data-ports": no_public_data_ports,
    "container-limits": container_limits,
    "container-health-check": container_health_check,
    "container-restart-policy": container_restart_policy,
    "container-log-rotation": container_log_rotation,
    "pinned-images": pinned_images,
    "protected-data-volumes": protected_data_volumes,
    "secrets-in-files": secrets_in_files,
}
"""Each policy's name and its validation."""

STACKS_CONFIG = {"stacks": _string_list(STRICT_STACKS, "Stacks held to the production rules.")}
CONFIG = {
    "container-health-check": {
        "unchecked": _string_list(UNCHECKED_CONTAINERS, "Containers exempted: their health is Prometheus's scrape of them.")
    },
    "pinned-images": STACKS_CONFIG,
    "protected-data-volumes": STACKS_CONFIG,
    "secrets-in-files": {
        "plain_secret_roles": _string_list(PLAIN_SECRET_ROLES, "Roles whose image reads its secrets from the environment only.")
    },
}

POLICIES: Sequence[ResourceValidationPolicy] = tuple(
    _policy(name, validation, CONFIG.get(name)) for name, validation in VALIDATIONS.items()
)
