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

from .docker_mapping import CONTAINER, IMAGE, NETWORK, REMOTE_IMAGE, TAG, VOLUME
from .values import UnsupportedInput

Kind = Literal["scalar", "list", "set", "map", "object_set", "healthcheck", "ports"]
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

DOCKER_SCHEMAS = {CONTAINER: CONTAINER_SCHEMA, NETWORK: NETWORK_SCHEMA, VOLUME: VOLUME_SCHEMA}

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
    if schema is not None:
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
