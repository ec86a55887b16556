"""What a `pulumi up` would do to a resource: the diff of the program's inputs against the recorded state.

Docker resources are diffed as the provider's schema says (terraform-provider-docker v4.5,
`resource_docker_container.go`, `resource_docker_network.go`, `resource_docker_volume.go`):
which fields force replacement, which are computed (an unset input keeps the stored value),
which are sets, lists or maps, and the diff-suppress rules of `user`, `workingDir` and `ports`.
Other resource types are diffed input by input. The engine's resource options then apply:
`ignoreChanges` drops properties, `replaceOnChanges` turns their updates into replacements.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .docker_mapping import CONTAINER, IMAGE, NETWORK, REMOTE_IMAGE, SECRET, SERVICE, SERVICE_CONFIG, TAG, VOLUME
from .values import UnsupportedInput

Kind = Literal["scalar", "list", "set", "map", "object_set", "healthcheck", "ports", "ratio"]
Action = Literal["create", "update", "replace", "delete"]


@dataclass(frozen=True)
class Attribute:
    """One input of a provider resource, as its schema treats it in a diff."""

    kind: Kind
    force_new: bool
    computed: bool = False
    default: Any = None
    """What an unset, non-computed input means (the schema's Default, or the type's zero value)."""
    empty_means_unchanged: bool = False
    """The schema's DiffSuppressFunc treats an empty new value as no change (`user`, `working_dir`)."""


def _s(force_new: bool = True, computed: bool = False, default: Any = "", **kw: Any) -> Attribute:
    return Attribute("scalar", force_new, computed, default, **kw)


def _i(force_new: bool = True, computed: bool = False, default: int = 0) -> Attribute:
    return Attribute("scalar", force_new, computed, default)


def _b(force_new: bool = True, computed: bool = False, default: bool = False) -> Attribute:
    return Attribute("scalar", force_new, computed, default)


def _set(force_new: bool = True, computed: bool = False) -> Attribute:
    return Attribute("set", force_new, computed, [])


def _objects(force_new: bool = True, computed: bool = False) -> Attribute:
    return Attribute("object_set", force_new, computed, [])


def _map(force_new: bool = True, computed: bool = False) -> Attribute:
    return Attribute("map", force_new, computed, {})


# Inputs that only steer the provider's create and delete (never read back, never sent to Docker
# by an update): a change is an update of the state alone.
_CONTAINER_STATE_ONLY = {
    name: _b(force_new=False) for name in ("wait", "attach", "logs", "start")
} | {
    "mustRun": _b(force_new=False, default=True),
    "removeVolumes": _b(force_new=False, default=True),
    "waitTimeout": _i(force_new=False, default=60),
    "destroyGraceSeconds": _i(force_new=False),
    "containerReadRefreshTimeoutMilliseconds": _i(force_new=False, default=15000),
}

CONTAINER_SCHEMA: dict[str, Attribute] = {
    **_CONTAINER_STATE_ONLY,
    "name": _s(),
    "image": _s(),
    "rm": _b(force_new=False),
    "readOnly": _b(),
    "hostname": _s(computed=True),
    "domainname": _s(),
    "command": Attribute("list", True, True, []),
    "entrypoints": Attribute("list", True, True, []),
    "user": _s(empty_means_unchanged=True),
    "workingDir": _s(empty_means_unchanged=True),
    "dns": _set(),
    "dnsOpts": _set(),
    "dnsSearches": _set(),
    "publishAllPorts": _b(),
    "restart": _s(force_new=False, default="no"),
    "maxRetryCount": _i(force_new=False),
    "capabilities": _objects(),
    "securityOpts": _set(computed=True),
    "runtime": _s(computed=True),
    "stopSignal": _s(computed=True),
    "stopTimeout": _i(computed=True),
    "mounts": _objects(),
    "volumes": _objects(),
    "tmpfs": _map(force_new=False),
    "ports": Attribute("ports", True, False, []),
    "hosts": _objects(),
    "ulimits": _objects(),
    "envs": _set(computed=True),
    "privileged": _b(),
    "devices": _objects(),
    "labels": _objects(computed=True),
    "memory": _i(force_new=False),
    "memoryReservation": _i(force_new=False),
    "memorySwap": _i(force_new=False),
    "shmSize": _i(computed=True),
    "cpuShares": _i(force_new=False),
    "cpuSet": _s(force_new=False),
    "logDriver": _s(computed=True),
    "logOpts": _map(),
    "networkMode": _s(default="bridge"),
    "networksAdvanced": _objects(),
    "pidMode": _s(),
    "usernsMode": _s(),
    "uploads": _objects(),
    "healthcheck": Attribute("healthcheck", False, True, None),
    "sysctls": _map(),
    "ipcMode": _s(computed=True),
    "groupAdds": _set(),
    "init": _b(force_new=False, computed=True),
    "tty": _b(),
    "stdinOpen": _b(),
    "storageOpts": _map(),
    "cpus": _s(),
    "gpus": _s(),
    "cpuPeriod": _i(force_new=False),
    "cpuQuota": _i(force_new=False),
    "cgroupnsMode": _s(),
    "cgroupParent": _s(),
}

NETWORK_SCHEMA: dict[str, Attribute] = {
    "name": _s(),
    "labels": _objects(),
    "driver": _s(computed=True),
    "options": _map(computed=True),
    "internal": _b(computed=True),
    "attachable": _b(),
    "ingress": _b(),
    "ipv6": _b(),
    "ipamDriver": _s(default="default"),
    "ipamOptions": _map(),
    "ipamConfigs": _objects(computed=True),
}

VOLUME_SCHEMA: dict[str, Attribute] = {
    "name": _s(computed=True),
    "labels": _objects(),
    "driver": _s(computed=True),
    "driverOpts": _map(),
}


# --- swarm: secrets, configs, services ------------------------------------------------------------
#
# resource_docker_secret.go / resource_docker_config.go: every field forces replacement. Neither
# they nor docker_service are marked DeleteBeforeReplace in pulumi-docker, so Pulumi creates the
# replacement first and deletes the old one at the end of the deployment.
#
# resource_docker_service.go: only name, auth, mode, task_spec.container_spec.hosts and .sysctl
# and task_spec.networks_advanced force replacement; everything else is updated in place
# (ServiceUpdate, a rolling update of the tasks).

SECRET_SCHEMA: dict[str, Attribute] = {"name": _s(), "data": _s(), "labels": _objects()}
SERVICE_CONFIG_SCHEMA: dict[str, Attribute] = {"name": _s(), "data": _s(), "dataRaw": _s(), "labels": _objects()}


@dataclass(frozen=True)
class Block:
    """A nested block: one object (a list of MaxItems 1 is an object on the wire), or a set or
    list of objects; its attributes diffed by their own schema."""

    schema: dict[str, Attribute | Block]
    many: Literal["one", "set", "list"] = "one"
    force_new: bool = False
    computed: bool = False


def _one(schema: dict[str, Attribute | Block], force_new: bool = False, computed: bool = False) -> Block:
    return Block(schema, "one", force_new, computed)


def _many(schema: dict[str, Attribute | Block], many: Literal["set", "list"] = "set", force_new: bool = False) -> Block:
    return Block(schema, many, force_new)


def _ratio() -> Attribute:
    return Attribute("ratio", False, False, "0.0")


_LABELS = _many({"label": _s(False), "value": _s(False)})
_FILE_REFERENCE = {
    "fileName": _s(False),
    "fileUid": _s(False, default="0"),
    "fileGid": _s(False, default="0"),
    "fileMode": _i(False, default=0o444),
}
_UPDATE_CONFIG = {
    "parallelism": _i(False, default=1),
    "delay": _s(False, default="0s"),
    "failureAction": _s(False, default="pause"),
    "monitor": _s(False, default="5s"),
    "maxFailureRatio": _ratio(),
    "order": _s(False, default="stop-first"),
}

SERVICE_SCHEMA: dict[str, Attribute | Block] = {
    "auth": _one({"serverAddress": _s(), "username": _s(), "password": _s()}, force_new=True),
    "name": _s(),
    "labels": Block(_LABELS.schema, "set", False, True),
    "taskSpec": _one(
        {
            "containerSpec": _one(
                {
                    "image": _s(False),
                    "labels": _LABELS,
                    "commands": Attribute("list", False, False, []),
                    "args": Attribute("list", False, False, []),
                    "hostname": _s(False),
                    "env": _map(False),
                    "dir": _s(False),
                    "user": _s(False),
                    "groups": Attribute("list", False, False, []),
                    "privileges": _one({}),
                    "readOnly": _b(False),
                    "mounts": _many(
                        {
                            "target": _s(False),
                            "source": _s(False),
                            "type": _s(False),
                            "readOnly": _b(False),
                            "bindOptions": _one({"propagation": _s(False, default="rprivate")}),
                            "volumeOptions": _one(
                                {"noCopy": _b(False), "labels": _LABELS, "driverName": _s(False), "driverOptions": _map(False)}
                            ),
                            "tmpfsOptions": _one({"sizeBytes": _i(False), "mode": _i(False)}),
                        }
                    ),
                    "stopSignal": _s(False),
                    "stopGracePeriod": _s(False, computed=True),
                    "healthcheck": _one(
                        {
                            "tests": Attribute("list", False, False, []),
                            "interval": _s(False, default="0s"),
                            "timeout": _s(False, default="0s"),
                            "startPeriod": _s(False, default="0s"),
                            "retries": _i(False),
                        },
                        computed=True,
                    ),
                    "hosts": _many({"ip": _s(), "host": _s()}, force_new=True),
                    "dnsConfig": _one(
                        {"nameservers": Attribute("list", False, False, []), "searches": Attribute("list", False, False, []), "options": Attribute("list", False, False, [])},
                        computed=True,
                    ),
                    "secrets": _many({"secretId": _s(False), "secretName": _s(False), **_FILE_REFERENCE}),
                    "configs": _many({"configId": _s(False), "configName": _s(False), **_FILE_REFERENCE}),
                    "isolation": _s(False, default="default"),
                    "sysctl": _map(True),
                    "capAdds": Attribute("list", False, False, []),
                    "capDrops": Attribute("list", False, False, []),
                    "init": _b(False, computed=True),
                }
            ),
            "resources": _one(
                {
                    "limits": _one({"nanoCpus": _i(False), "memoryBytes": _i(False)}),
                    "reservation": _one({"nanoCpus": _i(False), "memoryBytes": _i(False), "genericResources": _one({})}),
                },
                computed=True,
            ),
            "restartPolicy": _one(
                {"condition": _s(False), "delay": _s(False), "maxAttempts": _i(False), "window": _s(False)}, computed=True
            ),
            "placement": _one(
                {
                    "constraints": _set(False),
                    "prefs": _set(False),
                    "maxReplicas": _i(False),
                    "platforms": _many({"architecture": _s(False), "os": _s(False)}),
                },
                computed=True,
            ),
            "forceUpdate": _i(False, computed=True),
            "runtime": _s(False, computed=True),
            "networksAdvanceds": _many(
                {"name": _s(), "id": _s(), "aliases": _set(), "driverOpts": _set()}, force_new=True
            ),
            "logDriver": _one({"name": _s(False), "options": _map(False)}),
        }
    ),
    "mode": _one({"replicated": _one({"replicas": _i(default=1)}, computed=True), "global": _b()}, force_new=True, computed=True),
    "updateConfig": _one(_UPDATE_CONFIG),
    "rollbackConfig": _one(_UPDATE_CONFIG),
    "endpointSpec": _one(
        {
            "mode": _s(False, computed=True),
            "ports": _many(
                {
                    "name": _s(False),
                    "protocol": _s(False, default="tcp"),
                    "targetPort": _i(False),
                    "publishedPort": _i(False, computed=True),
                    "publishMode": _s(False, default="ingress"),
                },
                "list",
            ),
        },
        computed=True,
    ),
    "convergeConfig": _one({"delay": _s(False, default="7s"), "timeout": _s(False, default="3m")}),
}


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def _normalised(block: Block, element: Mapping[str, Any] | None) -> dict[str, Any]:
    """An element of a set or list block with each unset attribute at its default."""
    element = element or {}
    out: dict[str, Any] = {}
    for key, attribute in block.schema.items():
        value = element.get(key)
        if isinstance(attribute, Block):
            if attribute.many == "one":
                out[key] = None if _empty(value) else _normalised(attribute, value)
            else:
                out[key] = sorted((_canonical(_normalised(attribute, item)) for item in value or []))
        elif value is None:
            out[key] = None if attribute.computed else attribute.default
        elif attribute.kind == "ratio":
            out[key] = float(value)
        elif attribute.kind == "set":
            out[key] = sorted(map(_canonical, value))
        else:
            out[key] = value
    return out


def _diff_block(
    path: str, block: Block, stored: Any, declared: Any, changes: list[PropertyChange], force_new: bool
) -> None:
    """Append the changes between a stored and a declared nested block, as paths ("a.b.c")."""
    replaces = force_new or block.force_new
    if declared is None or declared == [] and block.many != "one":
        if declared is None and block.computed:
            return
        if not _empty(stored):
            changes.append(PropertyChange(path, stored, declared, replaces))
        return
    if block.many == "one":
        if _empty(stored):
            stored = {}
        for key, attribute in block.schema.items():
            _diff_one(f"{path}.{key}", attribute, stored.get(key), declared.get(key), changes, replaces)
        return
    stored_items = [_normalised(block, item) for item in stored or []]
    declared_items = [_normalised(block, item) for item in declared]
    if block.many == "list" and len(stored_items) == len(declared_items):
        # Element by element, so that a computed attribute left unset keeps Docker's value.
        for index, (old, new) in enumerate(zip(stored_items, declared_items)):
            for key, attribute in block.schema.items():
                if new.get(key) is None and getattr(attribute, "computed", False):
                    continue
                if _canonical(old.get(key)) != _canonical(new.get(key)):
                    changes.append(PropertyChange(f"{path}[{index}].{key}", old.get(key), new.get(key), replaces))
        return
    for items in (stored_items, declared_items):
        for item in items:
            for key in [key for key, value in item.items() if value is None]:
                del item[key]
    if sorted(map(_canonical, stored_items)) != sorted(map(_canonical, declared_items)):
        changes.append(PropertyChange(path, stored, declared, replaces))


def _diff_one(
    path: str, attribute: Attribute | Block, stored: Any, declared: Any, changes: list[PropertyChange], force_new: bool
) -> None:
    if isinstance(attribute, Block):
        _diff_block(path, attribute, stored, declared, changes, force_new)
        return
    if attribute.kind == "ratio":
        # suppressEquivalentFloatRatio: the same number is no change ("0.1" == "0.10").
        if float(stored if stored is not None else attribute.default) != float(declared if declared is not None else attribute.default):
            changes.append(PropertyChange(path, stored, declared, force_new or attribute.force_new))
        return
    if _differs(attribute, stored, declared):
        changes.append(PropertyChange(path, stored, declared, force_new or attribute.force_new))


def _diff_nested(schema: Mapping[str, Attribute | Block], stored: Mapping[str, Any], declared: Mapping[str, Any], options: Options) -> list[PropertyChange]:
    changes: list[PropertyChange] = []
    for key, attribute in schema.items():
        _diff_one(key, attribute, stored.get(key), declared.get(key), changes, False)
    return [change for change in changes if not _matches(change.name, options.ignore_changes)]


DOCKER_SCHEMAS = {
    CONTAINER: CONTAINER_SCHEMA,
    NETWORK: NETWORK_SCHEMA,
    VOLUME: VOLUME_SCHEMA,
    SECRET: SECRET_SCHEMA,
    SERVICE_CONFIG: SERVICE_CONFIG_SCHEMA,
}

# Resources whose every input change replaces them (random and TLS values, images, tags).
_REPLACED_ON_ANY_CHANGE = ("random:", "tls:", REMOTE_IMAGE, IMAGE, TAG)
COMMANDS = ("command:local:Command", "command:remote:Command")


@dataclass(frozen=True)
class PropertyChange:
    """One property whose stored value differs from the program's."""

    name: str
    stored: Any
    declared: Any
    replaces: bool


@dataclass(frozen=True)
class Change:
    """What `pulumi up` would do to one resource."""

    urn: str
    type: str
    name: str
    action: Action
    properties: tuple[PropertyChange, ...] = ()

    def __str__(self) -> str:
        detail = "; ".join(
            f"{change.name}: stored {_show(change.stored)}, program {_show(change.declared)}"
            f"{' (forces replacement)' if change.replaces else ''}"
            for change in self.properties
        )
        return f"{self.action} {self.type.rsplit(':', 1)[-1]} {self.name!r}" + (f": {detail}" if detail else "")


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def _canonical(value: Any) -> str:
    return json.dumps(_whole_numbers(value), sort_keys=True, default=str)


def _whole_numbers(value: Any) -> Any:
    """Numbers as the schema's integers: the program's arrive as floats (16384.0) over the wire."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def _object_key(item: Mapping[str, Any]) -> str:
    # Set elements compare by their non-empty fields; nested lists of a set element are sets too.
    cleaned = {
        key: sorted(value, key=_canonical) if isinstance(value, list) else value
        for key, value in item.items()
        if value not in (None, "", [], {}, False, 0)
    }
    return _canonical(cleaned)


def _ports_equal(stored: list[Mapping[str, Any]], declared: list[Mapping[str, Any]]) -> bool:
    """`suppressIfPortsDidNotChangeForMigrationV0ToV1`: same count, and every stored port found in the program's."""
    if len(stored) != len(declared):
        return False
    wanted = [
        {
            "internal": port.get("internal"),
            "external": port.get("external"),
            "ip": port.get("ip") or "0.0.0.0",
            "protocol": port.get("protocol") or "tcp",
        }
        for port in declared
    ]
    for old in stored:
        same_port = [new for new in wanted if new["internal"] == old.get("internal")]
        if not same_port:
            return False
        new = next((port for port in same_port if port["protocol"] == old.get("protocol")), same_port[0])
        if new["protocol"] != old.get("protocol"):
            return False
        # `external` is optional and computed: unset, Docker's choice stands.
        if new["external"] is not None and new["external"] != old.get("external"):
            return False
        if new["ip"] != old.get("ip"):
            return False
    return True


_HEALTHCHECK_DEFAULTS = {"tests": [], "interval": "0s", "timeout": "0s", "startPeriod": "0s", "startInterval": "0s", "retries": 0}


def _differs(attribute: Attribute, stored: Any, declared: Any) -> bool:
    if declared is None and attribute.computed:
        return False
    if attribute.kind == "healthcheck":
        # Each field of the block has a default ("0s", 0): an unset one means that default.
        stored = stored or {}
        return any(
            stored.get(key, default) != (default if declared.get(key) is None else declared[key])
            for key, default in _HEALTHCHECK_DEFAULTS.items()
        )
    declared = attribute.default if declared is None else declared
    stored = attribute.default if stored is None else stored
    if attribute.kind == "scalar":
        if attribute.empty_means_unchanged and declared == "":
            return False
        return stored != declared
    if attribute.kind == "list":
        return list(stored) != list(declared)
    if attribute.kind == "set":
        return sorted(map(_canonical, stored)) != sorted(map(_canonical, declared))
    if attribute.kind == "map":
        return {k: str(v) for k, v in stored.items()} != {k: str(v) for k, v in declared.items()}
    if attribute.kind == "object_set":
        # A block of at most one element (`capabilities`) is a single object on the wire.
        stored, declared = ([value] if isinstance(value, Mapping) else value for value in (stored, declared))
        return sorted(map(_object_key, stored)) != sorted(map(_object_key, declared))
    return not _ports_equal(stored, declared)


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(path == pattern or path.startswith(pattern + ".") or pattern == "*" for pattern in patterns)


@dataclass(frozen=True)
class Options:
    """The resource options that shape a diff (from the registration; mocks do not see them)."""

    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()


def diff(
    urn: str,
    type_: str,
    name: str,
    stored: Mapping[str, Any],
    declared: Mapping[str, Any],
    options: Options,
) -> Change | None:
    """The change `pulumi up` would make to a resource recorded as `stored` that the program now declares
    with `declared` inputs (secrets unwrapped), or None when it would leave it alone."""
    schema = DOCKER_SCHEMAS.get(type_)
    changes: list[PropertyChange] = []
    if type_ == SERVICE:
        unknown = sorted(set(declared) - set(SERVICE_SCHEMA))
        if unknown:
            raise UnsupportedInput(f"{type_} {name!r}: no diff rule for input(s) {', '.join(unknown)}")
        changes = _diff_nested(SERVICE_SCHEMA, stored, declared, options)
    elif schema is not None:
        unknown = sorted(set(declared) - set(schema))
        if unknown:
            raise UnsupportedInput(f"{type_} {name!r}: no diff rule for input(s) {', '.join(unknown)}")
        for key, attribute in schema.items():
            if _matches(key, options.ignore_changes):
                continue
            if _differs(attribute, stored.get(key), declared.get(key)):
                changes.append(PropertyChange(key, stored.get(key), declared.get(key), attribute.force_new))
    else:
        replaces_all = type_.startswith(_REPLACED_ON_ANY_CHANGE)
        for key in sorted(set(stored) | set(declared)):
            if _matches(key, options.ignore_changes):
                continue
            if _canonical(stored.get(key)) != _canonical(declared.get(key)):
                replaces = replaces_all or (type_ in COMMANDS and key == "triggers")
                changes.append(PropertyChange(key, stored.get(key), declared.get(key), replaces))
    if not changes:
        return None
    changes = [
        PropertyChange(c.name, c.stored, c.declared, c.replaces or _matches(c.name, options.replace_on_changes))
        for c in changes
    ]
    action: Action = "replace" if any(change.replaces for change in changes) else "update"
    return Change(urn, type_, name, action, tuple(changes))
