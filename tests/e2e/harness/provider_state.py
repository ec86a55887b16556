"""The state the real Docker provider records for a resource, in the provider's own formats.

pulumi-docker 5 bridges terraform-provider-docker v4.5. After a create, the provider reads the
object back from Docker and stores what Docker reports; the next `pulumi up` diffs the
program's inputs against that state. These functions follow the provider's Read functions
(`resourceDockerContainerRead`, `resourceDockerNetworkReadRefreshFunc`,
`resourceDockerVolumeRead`) field by field, and take what the provider does not read back
from the inputs, as it does. States use the wire names of the inputs (camelCase).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

MB = 1024 * 1024
_NANOS_PER_SECOND = 1_000_000_000
_GO_UNITS = ((3600 * _NANOS_PER_SECOND, "h"), (60 * _NANOS_PER_SECOND, "m"))


def nano_cpus_text(nano_cpus: int) -> str:
    """NanoCpus as the provider's `nanoInt64ToDecimalString` writes them ("1.0", "0.25", "0.1", "10.")."""
    if nano_cpus == 0:
        return "0"
    value = Fraction(nano_cpus, _NANOS_PER_SECOND)
    whole, nanos = divmod(nano_cpus, _NANOS_PER_SECOND)
    nine_places = f"{whole}.{nanos:09d}"
    if nine_places.count("0") == 9:
        # big.Rat.FloatString(1): one decimal, rounded half away from zero.
        tenths = value * 10
        rounded = int(tenths) + (1 if tenths - int(tenths) >= Fraction(1, 2) else 0)
        return f"{rounded // 10}.{rounded % 10}"
    return nine_places.rstrip("0")


def go_duration_text(nanoseconds: int) -> str:
    """A duration as Go's `time.Duration.String()` prints it ("0s", "500ms", "1m0s", "1h0m30s")."""
    if nanoseconds == 0:
        return "0s"
    if nanoseconds < _NANOS_PER_SECOND:
        for size, unit in ((1_000_000, "ms"), (1_000, "µs"), (1, "ns")):
            if nanoseconds >= size:
                return f"{_decimal(Fraction(nanoseconds, size))}{unit}"
    text = ""
    rest = nanoseconds
    for size, unit in _GO_UNITS:
        if nanoseconds >= size:
            count, rest = divmod(rest, size)
            text += f"{count}{unit}"
    return f"{text}{_decimal(Fraction(rest, _NANOS_PER_SECOND))}s"


def _decimal(value: Fraction) -> str:
    whole = int(value)
    fraction = value - whole
    if fraction == 0:
        return str(whole)
    digits = f"{int(fraction * _NANOS_PER_SECOND):09d}".rstrip("0")
    return f"{whole}.{digits}"


def _flatten_ports(port_map: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """`flattenContainerPorts`: every binding, ordered by internal port."""
    ports: list[dict[str, Any]] = []
    for key in sorted(port_map or {}, key=lambda key: int(key.split("/")[0])):
        internal, protocol = key.split("/")
        for binding in port_map[key] or []:
            external = binding.get("HostPort") or "0"
            ports.append(
                {"internal": int(internal), "external": int(external), "ip": binding.get("HostIp", ""), "protocol": protocol}
            )
    return ports


def container_state(inputs: Mapping[str, Any], inspect: Mapping[str, Any]) -> dict[str, Any]:
    """What the provider stores after creating a container with `inputs` that Docker reports as `inspect`.

    Not read back, so kept as given: envs, labels (Docker adds the image's), volumes, uploads,
    networksAdvanced, destroyGraceSeconds, wait, waitTimeout and the other create-only inputs.
    """
    config = inspect.get("Config") or {}
    host = inspect.get("HostConfig") or {}
    settings = inspect.get("NetworkSettings") or {}
    state_ = inspect.get("State") or {}
    state: dict[str, Any] = dict(inputs)
    state["name"] = (inspect.get("Name") or "").lstrip("/")
    image = str(inputs.get("image") or "")
    state["image"] = inspect.get("Image") if image.startswith("sha256:") else config.get("Image")
    state["command"] = list(config.get("Cmd") or [])
    state["entrypoints"] = list(config.get("Entrypoint") or [])
    state["user"] = config.get("User", "")
    state["hostname"] = config.get("Hostname", "")
    state["domainname"] = config.get("Domainname", "")
    state["workingDir"] = config.get("WorkingDir", "")
    state["restart"] = (host.get("RestartPolicy") or {}).get("Name", "")
    state["maxRetryCount"] = (host.get("RestartPolicy") or {}).get("MaximumRetryCount", 0)
    state["init"] = bool(host.get("Init"))
    state["rm"] = bool(host.get("AutoRemove"))
    state["readOnly"] = bool(host.get("ReadonlyRootfs"))
    state["privileged"] = bool(host.get("Privileged"))
    state["publishAllPorts"] = bool(host.get("PublishAllPorts"))
    state["networkMode"] = host.get("NetworkMode", "")
    state["memory"] = int(host.get("Memory") or 0) // MB
    for wire, api in (("memoryReservation", "MemoryReservation"), ("memorySwap", "MemorySwap")):
        value = int(host.get(api) or 0)
        state[wire] = value // MB if value > 0 else value
    state["shmSize"] = int(host.get("ShmSize") or 0) // MB
    if host.get("NanoCpus"):
        state["cpus"] = nano_cpus_text(int(host["NanoCpus"]))
    state["cpuShares"] = int(host.get("CpuShares") or 0)
    state["cpuSet"] = host.get("CpusetCpus", "")
    log_config = host.get("LogConfig") or {}
    state["logDriver"] = log_config.get("Type", "")
    # Read back only when the program sets log options; then with the daemon's defaults merged in.
    state["logOpts"] = dict(log_config.get("Config") or {}) if inputs.get("logOpts") else None
    if (state_.get("Running") or inputs.get("mustRun", True)) and inputs.get("ports"):
        state["ports"] = _flatten_ports(settings.get("Ports"))
    healthcheck = config.get("Healthcheck")
    if healthcheck is not None:
        state["healthcheck"] = {
            "tests": list(healthcheck.get("Test") or []),
            "interval": go_duration_text(int(healthcheck.get("Interval") or 0)),
            "timeout": go_duration_text(int(healthcheck.get("Timeout") or 0)),
            "startPeriod": go_duration_text(int(healthcheck.get("StartPeriod") or 0)),
            "startInterval": go_duration_text(int(healthcheck.get("StartInterval") or 0)),
            "retries": int(healthcheck.get("Retries") or 0),
        }
    # Set only when Docker reports some; then as Docker stores them.
    if host.get("CapAdd") or host.get("CapDrop"):
        state["capabilities"] = {"adds": list(host.get("CapAdd") or []), "drops": list(host.get("CapDrop") or [])}
    # Read back only when the program sets ulimits.
    if inputs.get("ulimits"):
        state["ulimits"] = [
            {"name": limit["Name"], "soft": limit["Soft"], "hard": limit["Hard"]} for limit in host.get("Ulimits") or []
        ]
    state["securityOpts"] = list(host.get("SecurityOpt") or [])
    state["dns"] = list(host.get("Dns") or [])
    state["dnsOpts"] = list(host.get("DnsOptions") or [])
    state["dnsSearches"] = list(host.get("DnsSearch") or [])
    state["groupAdds"] = list(host.get("GroupAdd") or [])
    state["tmpfs"] = dict(host.get("Tmpfs") or {})
    state["sysctls"] = dict(host.get("Sysctls") or {})
    state["storageOpts"] = dict(host.get("StorageOpt") or {})
    state["ipcMode"] = host.get("IpcMode", "")
    state["usernsMode"] = host.get("UsernsMode", "")
    state["runtime"] = host.get("Runtime", "")
    state["tty"] = bool(config.get("Tty"))
    state["stdinOpen"] = bool(config.get("OpenStdin"))
    state["stopSignal"] = config.get("StopSignal", "")
    state["stopTimeout"] = int(config.get("StopTimeout") or 0)
    return state


def network_state(inputs: Mapping[str, Any], inspect: Mapping[str, Any]) -> dict[str, Any]:
    """What the provider stores for a network: every field as Docker reports it."""
    ipam = inspect.get("IPAM") or {}
    state: dict[str, Any] = dict(inputs)
    state.update(
        name=inspect["Name"],
        labels=[{"label": key, "value": value} for key, value in (inspect.get("Labels") or {}).items()],
        driver=inspect.get("Driver", ""),
        internal=bool(inspect.get("Internal")),
        attachable=bool(inspect.get("Attachable")),
        ingress=bool(inspect.get("Ingress")),
        ipv6=bool(inspect.get("EnableIPv6")),
        ipamDriver=ipam.get("Driver", ""),
        ipamOptions=dict(ipam.get("Options") or {}),
        options=dict(inspect.get("Options") or {}),
        ipamConfigs=[
            {
                "subnet": pool.get("Subnet", ""),
                "gateway": pool.get("Gateway", ""),
                "ipRange": pool.get("IPRange", ""),
                "auxAddress": dict(pool.get("AuxiliaryAddresses") or {}),
            }
            for pool in ipam.get("Config") or []
        ],
    )
    return state


def volume_state(inputs: Mapping[str, Any], inspect: Mapping[str, Any]) -> dict[str, Any]:
    """What the provider stores for a volume: name, labels, driver and its options as Docker reports them."""
    state: dict[str, Any] = dict(inputs)
    state.update(
        name=inspect["Name"],
        labels=[{"label": key, "value": value} for key, value in (inspect.get("Labels") or {}).items()],
        driver=inspect.get("Driver", ""),
        driverOpts=dict(inspect.get("Options") or {}),
    )
    return state
