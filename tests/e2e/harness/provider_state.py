"""The state the real Docker provider records for a resource, in the provider's own formats.

pulumi-docker 5 bridges terraform-provider-docker v4.5. After a create, the provider reads the
object back from Docker and stores what Docker reports; the next `pulumi up` diffs the
program's inputs against that state. These functions follow the provider's Read functions
(`resourceDockerContainerRead`, `resourceDockerNetworkReadRefreshFunc`,
`resourceDockerVolumeRead`, `resourceDockerServiceReadRefreshFunc` with the flatteners of
`resource_docker_service_structures.go`, `resourceDockerSecretRead`, `resourceDockerConfigRead`)
field by field, and take what the provider does not read back
from the inputs, as it does. States use the wire names of the inputs (camelCase).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from tests.go_values import go_duration_text, nano_cpus_text, short_duration_text

MB = 1024 * 1024
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
    # Read back only when the program sets it (flattenGPUsFromDeviceRequests): none is "", every
    # GPU "all"; what that form cannot say keeps the configured value.
    if inputs.get("gpus"):
        requests = host.get("DeviceRequests") or []
        every_gpu = len(requests) == 1 and requests[0].get("Count") == -1 and ["gpu"] in (requests[0].get("Capabilities") or [])
        state["gpus"] = "" if not requests else "all" if every_gpu else inputs["gpus"]
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


# --- swarm: secrets, configs, services ------------------------------------------------------------


def _label_set(labels: Mapping[str, str] | None) -> list[dict[str, str]]:
    """mapToLabelSet."""
    return [{"label": key, "value": value} for key, value in sorted((labels or {}).items())]


def secret_state(inputs: Mapping[str, Any], inspect: Mapping[str, Any]) -> dict[str, Any]:
    """`resourceDockerSecretRead`: only the name is read back (Docker never returns a secret's
    data, and the provider does not read its labels); data and labels stay as given."""
    state: dict[str, Any] = dict(inputs)
    state["name"] = (inspect.get("Spec") or {}).get("Name", "")
    return state


def config_state(inputs: Mapping[str, Any], inspect: Mapping[str, Any]) -> dict[str, Any]:
    """`resourceDockerConfigRead`: name, labels, and the data (base64 of what Docker holds, or
    the raw text when the program gave `dataRaw`)."""
    spec = inspect.get("Spec") or {}
    state: dict[str, Any] = dict(inputs)
    state["name"] = spec.get("Name", "")
    data = base64.b64decode(spec.get("Data") or "")
    if inputs.get("dataRaw"):
        state["dataRaw"] = data.decode()
    else:
        state["data"] = base64.b64encode(data).decode()
    state["labels"] = _label_set(spec.get("Labels"))
    return state


def _flatten_healthcheck(check: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if check.get("Test"):
        flat["tests"] = list(check["Test"])
    flat.update(
        interval=short_duration_text(int(check.get("Interval") or 0)),
        timeout=short_duration_text(int(check.get("Timeout") or 0)),
        startPeriod=short_duration_text(int(check.get("StartPeriod") or 0)),
        retries=int(check.get("Retries") or 0),
    )
    return flat


def _flatten_mount(mount: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {
        "target": mount.get("Target", ""),
        "source": mount.get("Source", ""),
        "type": mount.get("Type", ""),
        "readOnly": bool(mount.get("ReadOnly")),
    }
    if mount.get("BindOptions") is not None:
        propagation = mount["BindOptions"].get("Propagation")
        flat["bindOptions"] = {"propagation": propagation} if propagation else {}
    if mount.get("VolumeOptions") is not None:
        options = mount["VolumeOptions"]
        volume: dict[str, Any] = {"noCopy": bool(options.get("NoCopy")), "labels": _label_set(options.get("Labels"))}
        driver = options.get("DriverConfig")
        if driver is not None:
            if driver.get("Name"):
                volume["driverName"] = driver["Name"]
            volume["driverOptions"] = dict(driver.get("Options") or {})
        flat["volumeOptions"] = volume
    if mount.get("TmpfsOptions") is not None:
        options = mount["TmpfsOptions"]
        # int(Mode.Perm()): only the permission bits are kept (a sticky bit is lost).
        flat["tmpfsOptions"] = {"sizeBytes": int(options.get("SizeBytes") or 0), "mode": int(options.get("Mode") or 0) & 0o777}
    return flat


def _flatten_reference(reference: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """flattenServiceSecrets / flattenServiceConfigs."""
    prefix = kind.capitalize()
    flat: dict[str, Any] = {f"{kind}Id": reference.get(f"{prefix}ID", "")}
    if reference.get(f"{prefix}Name"):
        flat[f"{kind}Name"] = reference[f"{prefix}Name"]
    file = reference.get("File")
    if file is not None:
        flat["fileName"] = file.get("Name", "")
        if file.get("UID"):
            flat["fileUid"] = file["UID"]
        if file.get("GID"):
            flat["fileGid"] = file["GID"]
        flat["fileMode"] = int(file.get("Mode") or 0)
    return flat


def _flatten_container_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """flattenContainerSpec: a field is stored only when Docker reports a non-empty value."""
    flat: dict[str, Any] = {}
    for api, wire in (("Image", "image"), ("Hostname", "hostname"), ("User", "user"), ("Dir", "dir"), ("StopSignal", "stopSignal"), ("Isolation", "isolation")):
        if spec.get(api):
            flat[wire] = spec[api]
    for api, wire in (("Command", "commands"), ("Args", "args"), ("Groups", "groups"), ("CapabilityAdd", "capAdds"), ("CapabilityDrop", "capDrops")):
        if spec.get(api):
            flat[wire] = list(spec[api])
    if spec.get("Labels"):
        flat["labels"] = _label_set(spec["Labels"])
    if spec.get("Env"):
        # mapStringSliceToMap: split at the first "="... and join the rest back with "=".
        flat["env"] = {item.split("=")[0]: "=".join(item.split("=")[1:]) for item in spec["Env"] if item}
    if spec.get("ReadOnly"):
        flat["readOnly"] = True
    if spec.get("Mounts"):
        flat["mounts"] = [_flatten_mount(mount) for mount in spec["Mounts"]]
    if spec.get("StopGracePeriod") is not None:
        flat["stopGracePeriod"] = short_duration_text(int(spec["StopGracePeriod"]))
    if spec.get("Healthcheck") is not None:
        flat["healthcheck"] = _flatten_healthcheck(spec["Healthcheck"])
    if spec.get("Hosts"):
        flat["hosts"] = [{"ip": host.split(" ")[0], "host": host.split(" ")[1]} for host in spec["Hosts"]]
    if spec.get("DNSConfig") is not None:
        dns = spec["DNSConfig"]
        flat["dnsConfig"] = {
            wire: list(dns[api]) for api, wire in (("Nameservers", "nameservers"), ("Search", "searches"), ("Options", "options")) if dns.get(api)
        }
    if spec.get("Secrets"):
        flat["secrets"] = [_flatten_reference(reference, "secret") for reference in spec["Secrets"]]
    if spec.get("Configs"):
        flat["configs"] = [_flatten_reference(reference, "config") for reference in spec["Configs"]]
    if spec.get("Sysctls"):
        flat["sysctl"] = dict(spec["Sysctls"])
    if spec.get("Init") is not None:
        flat["init"] = bool(spec["Init"])
    return flat


def _flatten_task_spec(task: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if task.get("ContainerSpec") is not None:
        flat["containerSpec"] = _flatten_container_spec(task["ContainerSpec"])
    if task.get("Resources") is not None:
        resources = task["Resources"]
        limits = resources.get("Limits")
        reservations = resources.get("Reservations")
        flat["resources"] = {
            "limits": None if limits is None else {"nanoCpus": int(limits.get("NanoCPUs") or 0), "memoryBytes": int(limits.get("MemoryBytes") or 0)},
            "reservation": None
            if reservations is None
            else {"nanoCpus": int(reservations.get("NanoCPUs") or 0), "memoryBytes": int(reservations.get("MemoryBytes") or 0)},
        }
    if task.get("RestartPolicy") is not None:
        policy = task["RestartPolicy"]
        restart: dict[str, Any] = {}
        if policy.get("Condition"):
            restart["condition"] = policy["Condition"]
        if "Delay" in policy:
            restart["delay"] = short_duration_text(int(policy["Delay"]))
        if "MaxAttempts" in policy:
            restart["maxAttempts"] = int(policy["MaxAttempts"])
        if "Window" in policy:
            restart["window"] = short_duration_text(int(policy["Window"]))
        flat["restartPolicy"] = restart
    if task.get("Placement") is not None:
        placement = task["Placement"]
        where: dict[str, Any] = {}
        if placement.get("Constraints"):
            where["constraints"] = list(placement["Constraints"])
        if placement.get("Preferences"):
            where["prefs"] = [pref["Spread"]["SpreadDescriptor"] for pref in placement["Preferences"]]
        if placement.get("Platforms"):
            where["platforms"] = [{"architecture": p.get("Architecture", ""), "os": p.get("OS", "")} for p in placement["Platforms"]]
        where["maxReplicas"] = int(placement.get("MaxReplicas") or 0)
        flat["placement"] = where
    flat["forceUpdate"] = int(task.get("ForceUpdate") or 0)
    if task.get("Runtime"):
        flat["runtime"] = task["Runtime"]
    if task.get("Networks"):
        # flattenTaskNetworksAdvanced: Docker holds the network's id (a name given is resolved);
        # the provider stores it as `id` and no `name`.
        flat["networksAdvanceds"] = [
            {
                "id": network.get("Target", ""),
                "driverOpts": [f"{key}={value}" for key, value in sorted((network.get("DriverOpts") or {}).items())],
                **({"aliases": list(network["Aliases"])} if network.get("Aliases") else {}),
            }
            for network in task["Networks"]
        ]
    if task.get("LogDriver") is not None:
        driver = task["LogDriver"]
        flat["logDriver"] = {"name": driver.get("Name", ""), **({"options": dict(driver["Options"])} if driver.get("Options") else {})}
    return flat


def _flatten_update_config(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """flattenServiceUpdateOrRollbackConfig; the ratio with one decimal (FormatFloat 'f', 1)."""
    if config is None:
        return None
    return {
        "parallelism": int(config.get("Parallelism") or 0),
        "delay": short_duration_text(int(config.get("Delay") or 0)),
        "failureAction": config.get("FailureAction", ""),
        "monitor": short_duration_text(int(config.get("Monitor") or 0)),
        "maxFailureRatio": f"{float(config.get('MaxFailureRatio') or 0):.1f}",
        "order": config.get("Order", ""),
    }


def _flatten_service_ports(ports: list[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        {
            "name": port.get("Name", ""),
            "protocol": port.get("Protocol", ""),
            "targetPort": int(port.get("TargetPort") or 0),
            "publishedPort": int(port.get("PublishedPort") or 0),
            "publishMode": port.get("PublishMode", ""),
        }
        for port in ports or []
    ]


def service_state(inputs: Mapping[str, Any], inspect: Mapping[str, Any]) -> dict[str, Any]:
    """What `resourceDockerServiceReadRefreshFunc` stores for a service Docker reports as `inspect`.

    Read back: name, labels, task spec, mode, update and rollback configs, endpoint spec (from
    the service's live Endpoint when it has a mode, else from its spec). Kept as given:
    convergeConfig and auth.
    """
    spec = inspect.get("Spec") or {}
    state: dict[str, Any] = {key: value for key, value in inputs.items() if key in ("convergeConfig", "auth")}
    state["name"] = spec.get("Name", "")
    state["labels"] = _label_set(spec.get("Labels"))
    state["taskSpec"] = _flatten_task_spec(spec.get("TaskTemplate") or {})
    mode = spec.get("Mode") or {}
    flat_mode: dict[str, Any] = {"global": mode.get("Global") is not None}
    if mode.get("Replicated") is not None:
        replicas = mode["Replicated"].get("Replicas")
        flat_mode["replicated"] = {} if replicas is None else {"replicas": int(replicas)}
    state["mode"] = flat_mode
    state["updateConfig"] = _flatten_update_config(spec.get("UpdateConfig"))
    state["rollbackConfig"] = _flatten_update_config(spec.get("RollbackConfig"))
    endpoint = inspect.get("Endpoint") or {}
    if (endpoint.get("Spec") or {}).get("Mode"):
        state["endpointSpec"] = {"mode": endpoint["Spec"]["Mode"], "ports": _flatten_service_ports(endpoint.get("Ports"))}
    else:
        endpoint_spec = spec.get("EndpointSpec") or {}
        state["endpointSpec"] = {"mode": endpoint_spec.get("Mode", ""), "ports": _flatten_service_ports(endpoint_spec.get("Ports"))}
    return state
