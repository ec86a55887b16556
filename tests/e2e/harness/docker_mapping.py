"""Translate pulumi-docker v5 resource inputs into Docker Engine API requests.

Pure functions: wire inputs in, plans out (request bodies in the Engine API's own field names).
Each field follows the pulumi-docker documentation and the upstream terraform-provider-docker
behaviour it is generated from: `memory`, `memoryReservation`, `memorySwap` and `shmSize` are MB;
`cpus` is a decimal string turned into NanoCpus; health-check durations are Go durations
("30s", "1m30s") turned into nanoseconds; a port without `ip` binds 0.0.0.0.
Any input not named here raises `UnsupportedInput` naming it.
"""

from __future__ import annotations

import base64
import grp
import io
import pwd
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.go_values import parse_cpus, parse_duration_ns

from .values import Fields, UnsupportedInput

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
IMAGE = "docker:index/image:Image"
TAG = "docker:index/tag:Tag"
SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
SERVICE_CONFIG = "docker:index/serviceConfig:ServiceConfig"

MB = 1024 * 1024
RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")
DEFAULT_WAIT_TIMEOUT_SECONDS = 60

def labels_map(items: list[Fields]) -> dict[str, str]:
    """`labels: [{label, value}]` -> {label: value}."""
    return {item.required_string("label"): item.string("value", "") or "" for item in items}


def _duration(fields: Fields, name: str) -> int | None:
    text = fields.string(name)
    if text is None:
        return None
    try:
        return parse_duration_ns(text)
    except ValueError as exc:
        raise fields.error(name, str(exc)) from exc


def _megabytes(fields: Fields, name: str) -> int | None:
    value = fields.integer(name)
    return None if value is None else value * MB


# --- containers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadFile:
    """One file put into the container before it starts."""

    path: str
    content: bytes
    mode: int
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class ContainerPlan:
    """Everything needed to create, fill, connect and start one container."""

    name: str
    image: str
    create_body: dict[str, Any]
    """Body of POST /containers/create (Config fields plus HostConfig and NetworkingConfig)."""
    connect_after_create: list[tuple[str, dict[str, Any]]]
    """Networks (name, EndpointSettings) joined after create and before start, in place of the
    default bridge (left first, as the provider does)."""
    uploads: list[UploadFile]
    start: bool = True
    wait: bool = False
    wait_timeout_seconds: int = DEFAULT_WAIT_TIMEOUT_SECONDS
    must_run: bool = True
    attach: bool = False
    logs: bool = False
    auto_remove: bool = False
    destroy_grace_seconds: int = 0
    remove_volumes: bool = True
    networks: list[str] = field(default_factory=list)


def _owner_id(fields: Fields, name: str, lookup: str) -> int:
    value = fields.string(name)
    if value is None or value == "":
        return 0
    if value.isdigit():
        return int(value)
    # Documented: names are resolved with the host's user and group databases.
    try:
        return pwd.getpwnam(value).pw_uid if lookup == "user" else grp.getgrnam(value).gr_gid
    except KeyError as exc:
        raise fields.error(name, f"no {lookup} named {value!r} on this host") from exc


def _upload(item: Fields, base_dir: Path) -> UploadFile:
    path = item.required_string("file")
    content = item.string("content")
    content_base64 = item.string("contentBase64")
    source = item.string("source")
    item.accept("sourceHash")  # only a replacement trigger
    given = [value for value in (content, content_base64, source) if value]
    if len(given) != 1:
        raise item.error("content", "exactly one of 'content', 'contentBase64' or 'source' must be set")
    if content:
        data = content.encode()
    elif content_base64:
        data = base64.b64decode(content_base64)
    else:
        assert source is not None
        source_path = Path(source) if Path(source).is_absolute() else base_dir / source
        try:
            data = source_path.read_bytes()
        except OSError as exc:
            raise item.error("source", f"could not read file: {exc}") from exc
    permissions = item.string("permissions")
    executable = item.flag("executable", False)
    if permissions:
        try:
            mode = int(permissions, 8)
        except ValueError as exc:
            raise item.error("permissions", f"not an octal mode: {permissions!r}") from exc
    else:
        mode = 0o744 if executable else 0o644
    return UploadFile(
        path=path,
        content=data,
        mode=mode,
        uid=_owner_id(item, "owner", "user"),
        gid=_owner_id(item, "group", "group"),
    )


def uploads_archive(uploads: list[UploadFile]) -> bytes:
    """A tar archive holding the uploads, to extract at "/" in the container."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for upload in uploads:
            info = tarfile.TarInfo(name=upload.path.lstrip("/"))
            info.size = len(upload.content)
            info.mode = upload.mode
            info.uid = upload.uid
            info.gid = upload.gid
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(upload.content))
    return buffer.getvalue()


def _endpoint_settings(item: Fields) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    aliases = item.strings("aliases")
    if aliases:
        settings["Aliases"] = aliases
    ipam: dict[str, Any] = {}
    if item.string("ipv4Address"):
        ipam["IPv4Address"] = item.string("ipv4Address")
    if item.string("ipv6Address"):
        ipam["IPv6Address"] = item.string("ipv6Address")
    link_local = item.strings("linkLocalIps")
    if link_local:
        ipam["LinkLocalIPs"] = link_local
    if ipam:
        settings["IPAMConfig"] = ipam
    if item.string("macAddress"):
        settings["MacAddress"] = item.string("macAddress")
    driver_opts = item.strings("driverOpts")
    if driver_opts:
        settings["DriverOpts"] = dict(option.split("=", 1) for option in driver_opts)
    gw_priority = item.integer("gwPriority")
    if gw_priority:
        settings["GwPriority"] = gw_priority
    return settings


def _mount(item: Fields) -> dict[str, Any]:
    mount_type = item.required_string("type")
    mount: dict[str, Any] = {"Type": mount_type, "Target": item.required_string("target")}
    source = item.string("source")
    if source:
        mount["Source"] = source
    if item.flag("readOnly", False):
        mount["ReadOnly"] = True
    bind_options = item.obj("bindOptions")
    volume_options = item.obj("volumeOptions")
    tmpfs_options = item.obj("tmpfsOptions")
    # As upstream: each options block applies only to its own mount type.
    if mount_type == "bind" and bind_options is not None:
        propagation = bind_options.string("propagation")
        mount["BindOptions"] = {"Propagation": propagation} if propagation else {}
    elif mount_type == "volume" and volume_options is not None:
        options: dict[str, Any] = {}
        if volume_options.flag("noCopy", False):
            options["NoCopy"] = True
        labels = labels_map(volume_options.objects("labels"))
        if labels:
            options["Labels"] = labels
        driver_name = volume_options.string("driverName")
        driver_options = volume_options.string_map("driverOptions")
        if driver_name or driver_options:
            options["DriverConfig"] = {"Name": driver_name or "", "Options": driver_options}
        subpath = volume_options.string("subpath")
        if subpath:
            options["Subpath"] = subpath
        mount["VolumeOptions"] = options
    elif mount_type == "tmpfs" and tmpfs_options is not None:
        options = {}
        size = tmpfs_options.integer("sizeBytes")
        if size:
            options["SizeBytes"] = size
        mode = tmpfs_options.integer("mode")
        if mode:
            options["Mode"] = mode
        mount["TmpfsOptions"] = options
    else:
        for name, block in (
            ("bindOptions", bind_options),
            ("volumeOptions", volume_options),
            ("tmpfsOptions", tmpfs_options),
        ):
            if block is not None:
                raise item.error(name, f"does not apply to a mount of type {mount_type!r}")
    return mount


def _volumes(items: list[Fields]) -> tuple[dict[str, dict], list[str], list[str]]:
    """`volumes` -> (Config.Volumes, HostConfig.Binds, HostConfig.VolumesFrom), as upstream."""
    anonymous: dict[str, dict] = {}
    binds: list[str] = []
    volumes_from: list[str] = []
    for item in items:
        from_container = item.string("fromContainer") or ""
        container_path = item.string("containerPath") or ""
        source = item.string("hostPath") or item.string("volumeName") or ""
        mode = "ro" if item.flag("readOnly", False) else "rw"
        relabel = item.string("selinuxRelabel")
        if relabel:
            mode += "," + relabel
        if not from_container and not container_path:
            raise item.error("containerPath", "volume entry without container path or source container")
        if from_container and container_path:
            raise item.error("fromContainer", "both a container and a path specified in a volume entry")
        if from_container:
            volumes_from.append(from_container)
        elif source:
            anonymous[container_path] = {}
            binds.append(f"{source}:{container_path}:{mode}")
        else:
            anonymous[container_path] = {}
    return anonymous, binds, volumes_from


def _ports(items: list[Fields]) -> tuple[dict[str, dict], dict[str, list[dict[str, str]]]]:
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for item in items:
        internal = item.integer("internal")
        if internal is None:
            raise item.error("internal", "is required")
        port = f"{internal}/{item.string('protocol', 'tcp')}"
        exposed[port] = {}
        external = item.integer("external")
        bindings.setdefault(port, []).append(
            {"HostIp": item.string("ip", "0.0.0.0") or "0.0.0.0", "HostPort": "" if external is None else str(external)}
        )
    return exposed, bindings


def _security_opts(options: list[str], host: dict[str, Any]) -> None:
    # "systempaths=unconfined" is a client-side option: it clears the masked and read-only paths.
    filtered = [option for option in options if option != "systempaths=unconfined"]
    if len(filtered) != len(options):
        host["MaskedPaths"] = []
        host["ReadonlyPaths"] = []
    if filtered:
        host["SecurityOpt"] = filtered


def map_container(inputs: Mapping[str, Any], base_dir: Path, where: str = CONTAINER) -> ContainerPlan:
    """The plan for a `docker:index/container:Container` (inputs must include `name`)."""
    f = Fields(inputs, where)
    name = f.required_string("name")
    image = f.required_string("image")
    config: dict[str, Any] = {"Image": image}
    host: dict[str, Any] = {}

    for wire, api in (
        ("hostname", "Hostname"),
        ("domainname", "Domainname"),
        ("user", "User"),
        ("workingDir", "WorkingDir"),
        ("stopSignal", "StopSignal"),
    ):
        value = f.string(wire)
        if value:
            config[api] = value
    if f.flag("tty", False):
        config["Tty"] = True
    if f.flag("stdinOpen", False):
        config["OpenStdin"] = True
    stop_timeout = f.integer("stopTimeout")
    if stop_timeout is not None:
        config["StopTimeout"] = stop_timeout
    envs = f.strings("envs")
    if envs:
        config["Env"] = envs
    command = f.strings("command")
    if command:
        if any(part == "" for part in command):
            raise f.error("command", "values for command may not be empty")
        config["Cmd"] = command
    entrypoint = f.strings("entrypoints")
    if entrypoint:
        config["Entrypoint"] = entrypoint
    labels = labels_map(f.objects("labels"))
    if labels:
        config["Labels"] = labels

    healthcheck = f.obj("healthcheck")
    if healthcheck is not None:
        check: dict[str, Any] = {"Test": healthcheck.strings("tests")}
        for wire, api in (
            ("interval", "Interval"),
            ("timeout", "Timeout"),
            ("startPeriod", "StartPeriod"),
            ("startInterval", "StartInterval"),
        ):
            nanoseconds = _duration(healthcheck, wire)
            if nanoseconds:
                check[api] = nanoseconds
        retries = healthcheck.integer("retries")
        if retries:
            check["Retries"] = retries
        config["Healthcheck"] = check

    exposed, bindings = _ports(f.objects("ports"))
    if exposed:
        config["ExposedPorts"] = exposed
        host["PortBindings"] = bindings
    anonymous, binds, volumes_from = _volumes(f.objects("volumes"))
    if anonymous:
        config["Volumes"] = anonymous
    if binds:
        host["Binds"] = binds
    if volumes_from:
        host["VolumesFrom"] = volumes_from
    mounts = [_mount(item) for item in f.objects("mounts")]
    if mounts:
        host["Mounts"] = mounts

    restart = f.string("restart", "no") or "no"
    if restart not in RESTART_POLICIES:
        raise f.error("restart", f"must be one of {', '.join(RESTART_POLICIES)}; got {restart!r}")
    host["RestartPolicy"] = {"Name": restart, "MaximumRetryCount": f.integer("maxRetryCount", 0)}

    log_config: dict[str, Any] = {"Type": f.string("logDriver", "") or ""}
    log_opts = f.string_map("logOpts")
    if log_opts:
        log_config["Config"] = log_opts
    host["LogConfig"] = log_config

    for wire, api in (("memory", "Memory"), ("memoryReservation", "MemoryReservation"), ("shmSize", "ShmSize")):
        size = _megabytes(f, wire)
        if size:
            host[api] = size
    swap = f.integer("memorySwap")
    if swap:
        # -1 (unlimited) passes through; positive values are MB like `memory`.
        host["MemorySwap"] = swap * MB if swap > 0 else swap
    cpus = f.string("cpus")
    cpu_period = f.integer("cpuPeriod")
    cpu_quota = f.integer("cpuQuota")
    if cpus:
        try:
            host["NanoCpus"] = parse_cpus(cpus)
        except ValueError as exc:
            raise f.error("cpus", str(exc)) from exc
        # Documented: cpuPeriod and cpuQuota are ignored when cpus is set.
    else:
        if cpu_period:
            host["CpuPeriod"] = cpu_period
        if cpu_quota:
            host["CpuQuota"] = cpu_quota
    gpus = f.string("gpus")
    if gpus:
        # The provider hands the value to the docker CLI's GpuOpts: "all" asks for every GPU.
        if gpus.strip("'\" ") != "all":
            raise UnsupportedInput(f"{where}: input not supported by the harness (only 'all' is modelled): gpus")
        host["DeviceRequests"] = [{"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}]
    cpu_shares = f.integer("cpuShares")
    if cpu_shares:
        host["CpuShares"] = cpu_shares
    cpu_set = f.string("cpuSet")
    if cpu_set:
        host["CpusetCpus"] = cpu_set

    for wire, api in (
        ("privileged", "Privileged"),
        ("publishAllPorts", "PublishAllPorts"),
        ("readOnly", "ReadonlyRootfs"),
    ):
        if f.flag(wire, False):
            host[api] = True
    auto_remove = f.flag("rm", False)
    if auto_remove:
        host["AutoRemove"] = True
    init = f.boolean("init")
    if init is not None:
        host["Init"] = init
    for wire, api in (
        ("runtime", "Runtime"),
        ("ipcMode", "IpcMode"),
        ("pidMode", "PidMode"),
        ("usernsMode", "UsernsMode"),
        ("cgroupParent", "CgroupParent"),
    ):
        value = f.string(wire)
        if value:
            host[api] = value
    cgroupns_mode = f.string("cgroupnsMode")
    if cgroupns_mode:
        if cgroupns_mode not in ("private", "host"):
            raise f.error("cgroupnsMode", "invalid CGROUP mode, must be either 'private', 'host' or empty")
        host["CgroupnsMode"] = cgroupns_mode
    for wire, api in (("tmpfs", "Tmpfs"), ("sysctls", "Sysctls"), ("storageOpts", "StorageOpt")):
        mapping = f.string_map(wire)
        if mapping:
            host[api] = mapping
    for wire, api in (
        ("dns", "Dns"),
        ("dnsOpts", "DnsOptions"),
        ("dnsSearches", "DnsSearch"),
        ("groupAdds", "GroupAdd"),
        ("deviceCgroupRules", "DeviceCgroupRules"),
    ):
        values = f.strings(wire)
        if values:
            host[api] = values
    _security_opts(f.strings("securityOpts"), host)
    capabilities = f.obj("capabilities")
    if capabilities is not None:
        adds = capabilities.strings("adds")
        drops = capabilities.strings("drops")
        if adds:
            host["CapAdd"] = adds
        if drops:
            host["CapDrop"] = drops
    ulimits = [
        {"Name": item.required_string("name"), "Soft": item.integer("soft", 0), "Hard": item.integer("hard", 0)}
        for item in f.objects("ulimits")
    ]
    if ulimits:
        host["Ulimits"] = ulimits
    hosts = [f"{item.required_string('host')}:{item.required_string('ip')}" for item in f.objects("hosts")]
    if hosts:
        host["ExtraHosts"] = hosts
    devices = []
    for item in f.objects("devices"):
        host_path = item.required_string("hostPath")
        devices.append(
            {
                "PathOnHost": host_path,
                "PathInContainer": item.string("containerPath") or host_path,
                "CgroupPermissions": item.string("permissions") or "rwm",
            }
        )
    if devices:
        host["Devices"] = devices

    # As the provider: created in `networkMode` (default "bridge"); with networksAdvanced, the
    # container then leaves the default bridge and joins each of them, all before it starts.
    host["NetworkMode"] = f.string("networkMode") or "bridge"
    networks = [(item.required_string("name"), _endpoint_settings(item)) for item in f.objects("networksAdvanced")]

    uploads = [_upload(item, base_dir) for item in f.objects("uploads")]
    plan = ContainerPlan(
        name=name,
        image=image,
        create_body={**config, "HostConfig": host},
        connect_after_create=networks,
        uploads=uploads,
        start=f.flag("start", True),
        wait=f.flag("wait", False),
        wait_timeout_seconds=f.integer("waitTimeout", DEFAULT_WAIT_TIMEOUT_SECONDS) or DEFAULT_WAIT_TIMEOUT_SECONDS,
        must_run=f.flag("mustRun", True),
        attach=f.flag("attach", False),
        logs=f.flag("logs", False),
        auto_remove=auto_remove,
        destroy_grace_seconds=f.integer("destroyGraceSeconds", 0) or 0,
        remove_volumes=f.flag("removeVolumes", True),
        networks=[network for network, _ in networks],
    )
    # Read by the provider only while refreshing state; nothing to apply.
    f.accept("containerReadRefreshTimeoutMilliseconds")
    f.finish()
    return plan


# --- networks, volumes, images --------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkPlan:
    name: str
    create_kwargs: dict[str, Any]
    """Keyword arguments for docker.APIClient.create_network."""


def map_network(inputs: Mapping[str, Any], where: str = NETWORK) -> NetworkPlan:
    f = Fields(inputs, where)
    name = f.required_string("name")
    kwargs: dict[str, Any] = {"check_duplicate": True}
    driver = f.string("driver")
    if driver:
        kwargs["driver"] = driver
    options = f.string_map("options")
    if options:
        kwargs["options"] = options
    for wire, keyword in (
        ("internal", "internal"),
        ("attachable", "attachable"),
        ("ingress", "ingress"),
        ("ipv6", "enable_ipv6"),
    ):
        if f.flag(wire, False):
            kwargs[keyword] = True
    labels = labels_map(f.objects("labels"))
    if labels:
        kwargs["labels"] = labels
    ipam: dict[str, Any] = {}
    ipam_driver = f.string("ipamDriver")
    if ipam_driver:
        ipam["Driver"] = ipam_driver
    pools = []
    for item in f.objects("ipamConfigs"):
        pool: dict[str, Any] = {}
        for wire, api in (("subnet", "Subnet"), ("ipRange", "IPRange"), ("gateway", "Gateway")):
            value = item.string(wire)
            if value:
                pool[api] = value
        aux = item.string_map("auxAddress")
        if aux:
            pool["AuxiliaryAddresses"] = aux
        pools.append(pool)
    if pools:
        ipam["Config"] = pools
    ipam_options = f.string_map("ipamOptions")
    if ipam_options:
        ipam["Options"] = ipam_options
    if ipam:
        ipam.setdefault("Driver", "default")
        kwargs["ipam"] = ipam
    f.finish()
    return NetworkPlan(name=name, create_kwargs=kwargs)


@dataclass(frozen=True)
class VolumePlan:
    name: str
    driver: str | None
    driver_opts: dict[str, str]
    labels: dict[str, str]


def map_volume(inputs: Mapping[str, Any], where: str = VOLUME) -> VolumePlan:
    f = Fields(inputs, where)
    plan = VolumePlan(
        name=f.required_string("name"),
        driver=f.string("driver"),
        driver_opts=f.string_map("driverOpts"),
        labels=labels_map(f.objects("labels")),
    )
    f.finish()
    return plan


@dataclass(frozen=True)
class RemoteImagePlan:
    name: str
    platform: str | None = None
    """os/arch[/variant] the image must be for (the provider pulls that variant)."""


def map_remote_image(inputs: Mapping[str, Any], where: str = REMOTE_IMAGE) -> RemoteImagePlan:
    f = Fields(inputs, where)
    plan = RemoteImagePlan(name=f.required_string("name"), platform=f.string("platform") or None)
    # Pull triggers and removal options act on pulls and deletes, which never happen here:
    # the image must already be present and is left in place.
    f.accept("keepLocally", "forceRemove", "pullTriggers", "triggers")
    if f.has("build"):
        raise f.error("build", "building through RemoteImage is not supported; use docker.Image")
    f.finish()
    return plan


@dataclass(frozen=True)
class ImageBuildPlan:
    image_name: str
    context: Path
    dockerfile: Path
    build_args: dict[str, str]
    target: str | None
    network: str | None
    extra_hosts: list[str]
    context_input: str
    dockerfile_output: str
    platform: str | None = None


def map_image(inputs: Mapping[str, Any], base_dir: Path, where: str = IMAGE) -> ImageBuildPlan:
    f = Fields(inputs, where)
    image_name = f.required_string("imageName")
    if not f.flag("skipPush", False):
        raise f.error("skipPush", "pushing to a registry is not supported; set skip_push=True")
    if f.has("registry"):
        raise f.error("registry", "registries are not supported")
    f.accept("buildOnPreview")
    build = f.obj("build")
    context_input = "."
    dockerfile_input: str | None = None
    build_args: dict[str, str] = {}
    target = network = platform = None
    extra_hosts: list[str] = []
    if build is not None:
        context_input = build.string("context", ".") or "."
        dockerfile_input = build.string("dockerfile")
        build_args = build.string_map("args")
        target = build.string("target")
        network = build.string("network")
        extra_hosts = build.strings("addHosts")
        platform = build.string("platform") or None
        builder = build.string("builderVersion")
        if builder not in (None, "BuilderV1"):
            raise build.error(
                "builderVersion", f"{builder!r} is not supported; the harness builds with the classic builder"
            )
        if build.has("cacheFrom"):
            raise build.error("cacheFrom", "is not supported")
    # As the provider: the Dockerfile path is relative to the working directory, and defaults
    # to <context>/Dockerfile.
    context = (base_dir / context_input).resolve()
    dockerfile = (base_dir / dockerfile_input).resolve() if dockerfile_input else context / "Dockerfile"
    plan = ImageBuildPlan(
        image_name=image_name,
        context=context,
        dockerfile=dockerfile,
        build_args=build_args,
        target=target,
        network=network,
        extra_hosts=extra_hosts,
        context_input=context_input,
        dockerfile_output=dockerfile_input or str(Path(context_input) / "Dockerfile"),
        platform=platform,
    )
    f.finish()
    return plan


@dataclass(frozen=True)
class TagPlan:
    source_image: str
    target_image: str


def map_tag(inputs: Mapping[str, Any], where: str = TAG) -> TagPlan:
    f = Fields(inputs, where)
    plan = TagPlan(source_image=f.required_string("sourceImage"), target_image=f.required_string("targetImage"))
    f.accept("tagTriggers")
    f.finish()
    return plan


def split_image_reference(reference: str) -> tuple[str, str | None]:
    """("repo", "tag") for "repo:tag"; a registry port is not mistaken for a tag."""
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1 :]
    return reference, None


# --- swarm: secrets, configs, services ------------------------------------------------------------
#
# Upstream: resource_docker_secret.go, resource_docker_config.go, resource_docker_service.go (schema),
# resource_docker_service_structures.go (createServiceSpec and its helpers). The provider builds the
# spec from `d.Get(...)`, where every attribute of a nested block is present with its zero value or
# schema default; so some fields are always sent even when the program leaves them out (a
# health check {}, StopGracePeriod 0, Init false, Isolation "default", DNSConfig {}, Placement {},
# Resources {}, RestartPolicy with Delay/MaxAttempts/Window 0 once the block is given). The maps
# below send the same, so that what Docker stores (and the provider reads back) is the same.


def _base64_data(fields: Fields, name: str) -> bytes:
    text = fields.required_string(name)
    # validateStringIsBase64Encoded, then base64.StdEncoding.DecodeString.
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise fields.error(name, "must be base64 (standard alphabet, padded)") from exc


@dataclass(frozen=True)
class SwarmObjectPlan:
    """A secret or config: its name, decoded data and labels."""

    name: str
    data: bytes
    labels: dict[str, str]


def map_secret(inputs: Mapping[str, Any], where: str = SECRET) -> SwarmObjectPlan:
    """`docker:index/secret:Secret` -> POST /secrets/create (name, data decoded, labels)."""
    f = Fields(inputs, where)
    plan = SwarmObjectPlan(
        name=f.required_string("name"), data=_base64_data(f, "data"), labels=labels_map(f.objects("labels"))
    )
    f.finish()
    return plan


def map_service_config(inputs: Mapping[str, Any], where: str = SERVICE_CONFIG) -> SwarmObjectPlan:
    """`docker:index/serviceConfig:ServiceConfig` -> POST /configs/create; exactly one of data, dataRaw."""
    f = Fields(inputs, where)
    name = f.required_string("name")
    if f.has("data") == f.has("dataRaw"):
        raise f.error("data", "exactly one of 'data' or 'dataRaw' must be set")
    data = _base64_data(f, "data") if f.has("data") else (f.string("dataRaw") or "").encode()
    plan = SwarmObjectPlan(name=name, data=data, labels=labels_map(f.objects("labels")))
    f.finish()
    return plan


@dataclass(frozen=True)
class ConvergePlan:
    """`convergeConfig`: wait before the first look, and how long the tasks may take to run."""

    delay_seconds: float
    timeout_seconds: float
    timeout_text: str
    """The timeout as Go prints it, for the provider's error message."""


@dataclass(frozen=True)
class ServicePlan:
    name: str
    spec: dict[str, Any]
    """Body of POST /services/create (and of /services/{id}/update)."""
    converge: ConvergePlan | None
    stop_grace_seconds: float
    """The delete waits this long for the tasks' containers before removing them (0: it does not)."""


def _go_duration(fields: Fields, name: str, default: str | None = None) -> int:
    """Nanoseconds of a duration input; as the provider (errors of ParseDuration ignored), "" is 0."""
    text = fields.string(name, default)
    if not text:
        return 0
    try:
        return parse_duration_ns(text)
    except ValueError as exc:
        raise fields.error(name, str(exc)) from exc


def _service_mount(item: Fields) -> dict[str, Any]:
    mount_type = item.required_string("type")
    if mount_type not in ("bind", "volume", "tmpfs"):
        raise item.error("type", f"must be bind, volume or tmpfs; got {mount_type!r}")
    mount: dict[str, Any] = {
        "Type": mount_type,
        "Target": item.required_string("target"),
        "Source": item.string("source", "") or "",
    }
    if item.flag("readOnly", False):
        mount["ReadOnly"] = True
    bind = item.obj("bindOptions")
    if bind is not None:
        mount["BindOptions"] = {"Propagation": bind.string("propagation", "rprivate") or "rprivate"}
    volume = item.obj("volumeOptions")
    if volume is not None:
        options: dict[str, Any] = {"NoCopy": volume.flag("noCopy", False)}
        labels = labels_map(volume.objects("labels"))
        if labels:
            options["Labels"] = labels
        driver_name = volume.string("driverName")
        driver_options = volume.string_map("driverOptions")
        if volume.has("driverName") or volume.has("driverOptions"):
            options["DriverConfig"] = {"Name": driver_name or "", "Options": driver_options}
        mount["VolumeOptions"] = options
    tmpfs = item.obj("tmpfsOptions")
    if tmpfs is not None:
        tmpfs_options: dict[str, Any] = {}
        size = tmpfs.integer("sizeBytes", 0)
        if size:
            tmpfs_options["SizeBytes"] = size
        mode = tmpfs.integer("mode", 0)
        if mode:
            tmpfs_options["Mode"] = mode
        mount["TmpfsOptions"] = tmpfs_options
    return mount


def _file_reference(item: Fields, kind: str) -> dict[str, Any]:
    """A secret or config reference; file_uid/file_gid default "0", file_mode 0o444 (schema defaults)."""
    reference: dict[str, Any] = {
        f"{kind.capitalize()}ID": item.required_string(f"{kind}Id"),
        "File": {
            "Name": item.required_string("fileName"),
            "UID": item.string("fileUid", "0") or "",
            "GID": item.string("fileGid", "0") or "",
            "Mode": item.integer("fileMode", 0o444),
        },
    }
    name = item.string(f"{kind}Name")
    if name:
        reference[f"{kind.capitalize()}Name"] = name
    return reference


def _container_spec(c: Fields) -> dict[str, Any]:
    spec: dict[str, Any] = {"Image": c.required_string("image")}
    labels = labels_map(c.objects("labels"))
    if labels:
        spec["Labels"] = labels
    for wire, api in (("commands", "Command"), ("args", "Args"), ("groups", "Groups"), ("capAdds", "CapabilityAdd"), ("capDrops", "CapabilityDrop")):
        values = c.strings(wire)
        if values:
            spec[api] = values
    for wire, api in (("hostname", "Hostname"), ("dir", "Dir"), ("user", "User"), ("stopSignal", "StopSignal")):
        value = c.string(wire)
        if value:
            spec[api] = value
    env = c.string_map("env")
    if env:
        # mapTypeMapValsToStringSlice: "K=V" (Go's map order; sorted here).
        spec["Env"] = [f"{key}={value}" for key, value in sorted(env.items()) if key]
    if c.flag("readOnly", False):
        spec["ReadOnly"] = True
    mounts = [_service_mount(item) for item in c.objects("mounts")]
    if mounts:
        spec["Mounts"] = mounts
    spec["StopGracePeriod"] = _go_duration(c, "stopGracePeriod")
    check: dict[str, Any] = {}
    healthcheck = c.obj("healthcheck")
    if healthcheck is not None:
        tests = healthcheck.strings("tests")
        if tests:
            check["Test"] = tests
        for wire, api in (("interval", "Interval"), ("timeout", "Timeout"), ("startPeriod", "StartPeriod")):
            nanoseconds = _go_duration(healthcheck, wire, "0s")
            if nanoseconds:
                check[api] = nanoseconds
        retries = healthcheck.integer("retries", 0)
        if retries:
            check["Retries"] = retries
    spec["Healthcheck"] = check
    hosts = [f"{item.required_string('ip')} {item.required_string('host')}" for item in c.objects("hosts")]
    if hosts:
        spec["Hosts"] = hosts
    dns: dict[str, Any] = {}
    dns_config = c.obj("dnsConfig")
    if dns_config is not None:
        for wire, api in (("nameservers", "Nameservers"), ("searches", "Search"), ("options", "Options")):
            values = dns_config.strings(wire)
            if values:
                dns[api] = values
    spec["DNSConfig"] = dns
    secrets = [_file_reference(item, "secret") for item in c.objects("secrets")]
    if secrets:
        spec["Secrets"] = secrets
    configs = [_file_reference(item, "config") for item in c.objects("configs")]
    if configs:
        spec["Configs"] = configs
    isolation = c.string("isolation", "default") or "default"
    if isolation not in ("default", "process", "hyperv"):
        raise c.error("isolation", f"must be default, process or hyperv; got {isolation!r}")
    spec["Isolation"] = isolation
    sysctls = c.string_map("sysctl")
    if sysctls:
        spec["Sysctls"] = sysctls
    # supportsServiceContainerInit (API >= 1.37): Init is always sent, false when unset.
    spec["Init"] = c.flag("init", False)
    if c.has("privileges"):
        raise c.error("privileges", "credential specs and SELinux contexts are not supported")
    return spec


def _task_spec(t: Fields) -> dict[str, Any]:
    container = t.obj("containerSpec")
    if container is None:
        raise t.error("containerSpec", "is required")
    task: dict[str, Any] = {"ContainerSpec": _container_spec(container)}
    resources: dict[str, Any] = {}
    block = t.obj("resources")
    if block is not None:
        limits = block.obj("limits")
        if limits is not None:
            resources["Limits"] = {
                "NanoCPUs": limits.integer("nanoCpus", 0),
                "MemoryBytes": limits.integer("memoryBytes", 0),
            }
        reservation = block.obj("reservation")
        if reservation is not None:
            if reservation.has("genericResources"):
                raise reservation.error("genericResources", "is not supported")
            resources["Reservations"] = {
                "NanoCPUs": reservation.integer("nanoCpus", 0),
                "MemoryBytes": reservation.integer("memoryBytes", 0),
            }
    task["Resources"] = resources
    restart: dict[str, Any] = {}
    policy = t.obj("restartPolicy")
    if policy is not None:
        condition = policy.string("condition", "") or ""
        if condition not in ("", "none", "on-failure", "any"):
            raise policy.error("condition", f"must be none, on-failure or any; got {condition!r}")
        if condition:
            restart["Condition"] = condition
        restart["Delay"] = _go_duration(policy, "delay")
        restart["MaxAttempts"] = policy.integer("maxAttempts", 0)
        restart["Window"] = _go_duration(policy, "window")
    task["RestartPolicy"] = restart
    placement: dict[str, Any] = {}
    where = t.obj("placement")
    if where is not None:
        constraints = where.strings("constraints")
        if constraints:
            placement["Constraints"] = constraints
        prefs = where.strings("prefs")
        if prefs:
            placement["Preferences"] = [{"Spread": {"SpreadDescriptor": pref}} for pref in prefs]
        platforms = [
            {"Architecture": item.required_string("architecture"), "OS": item.required_string("os")}
            for item in where.objects("platforms")
        ]
        if platforms:
            placement["Platforms"] = platforms
        max_replicas = where.integer("maxReplicas", 0)
        if max_replicas:
            placement["MaxReplicas"] = max_replicas
    task["Placement"] = placement
    task["ForceUpdate"] = t.integer("forceUpdate", 0)
    runtime = t.string("runtime")
    if runtime:
        task["Runtime"] = runtime
    networks = []
    for item in t.objects("networksAdvanceds"):
        target = item.string("id") or item.string("name")
        if not target:
            raise item.error("id", "network 'name' or 'id' must be specified")
        network: dict[str, Any] = {"Target": target}
        aliases = item.strings("aliases")
        if aliases:
            network["Aliases"] = aliases
        driver_opts = dict(option.split("=", 1) for option in item.strings("driverOpts") if "=" in option)
        if driver_opts:
            network["DriverOpts"] = driver_opts
        networks.append(network)
    if networks:
        task["Networks"] = networks
    log_driver = t.obj("logDriver")
    if log_driver is not None:
        driver: dict[str, Any] = {"Name": log_driver.required_string("name")}
        options = log_driver.string_map("options")
        if options:
            driver["Options"] = options
        task["LogDriver"] = driver
    return task


_UPDATE_DEFAULTS = {"parallelism": 1, "delay": "0s", "failureAction": "pause", "monitor": "5s", "maxFailureRatio": "0.0", "order": "stop-first"}


def _update_or_rollback_config(block: Fields, failure_actions: tuple[str, ...]) -> dict[str, Any]:
    """createUpdateOrRollbackConfig, with the schema's defaults for what the block leaves out."""
    action = block.string("failureAction", "pause") or "pause"
    if action not in failure_actions:
        raise block.error("failureAction", f"must be one of {', '.join(failure_actions)}; got {action!r}")
    order = block.string("order", "stop-first") or "stop-first"
    if order not in ("stop-first", "start-first"):
        raise block.error("order", f"must be stop-first or start-first; got {order!r}")
    ratio_text = block.string("maxFailureRatio", "0.0") or "0.0"
    try:
        ratio = float(ratio_text)
    except ValueError as exc:
        raise block.error("maxFailureRatio", f"not a number: {ratio_text!r}") from exc
    config: dict[str, Any] = {
        "Parallelism": block.integer("parallelism", 1),
        "FailureAction": action,
        "MaxFailureRatio": ratio,
        "Order": order,
    }
    delay = _go_duration(block, "delay", "0s")
    if delay:
        config["Delay"] = delay
    monitor = _go_duration(block, "monitor", "5s")
    if monitor:
        config["Monitor"] = monitor
    return config


def map_service(inputs: Mapping[str, Any], where: str = SERVICE) -> ServicePlan:
    """The plan for a `docker:index/service:Service` (inputs must include `name`)."""
    f = Fields(inputs, where)
    name = f.required_string("name")
    spec: dict[str, Any] = {"Name": name}
    labels = labels_map(f.objects("labels"))
    if labels:
        spec["Labels"] = labels
    task = f.obj("taskSpec")
    if task is None:
        raise f.error("taskSpec", "is required")
    spec["TaskTemplate"] = _task_spec(task)
    mode = f.obj("mode")
    service_mode: dict[str, Any] = {}
    if mode is not None:
        replicated = mode.obj("replicated")
        is_global = mode.flag("global", False)
        if replicated is not None and is_global:
            raise mode.error("global", "conflicts with 'replicated'")
        if replicated is not None:
            service_mode["Replicated"] = {"Replicas": replicated.integer("replicas", 1)}
        if is_global:
            service_mode["Global"] = {}
    spec["Mode"] = service_mode
    update = f.obj("updateConfig")
    if update is not None:
        spec["UpdateConfig"] = _update_or_rollback_config(update, ("pause", "continue", "rollback"))
    rollback = f.obj("rollbackConfig")
    if rollback is not None:
        spec["RollbackConfig"] = _update_or_rollback_config(rollback, ("pause", "continue"))
    endpoint: dict[str, Any] = {}
    endpoint_spec = f.obj("endpointSpec")
    if endpoint_spec is not None:
        endpoint_mode = endpoint_spec.string("mode")
        if endpoint_mode:
            if endpoint_mode not in ("vip", "dnsrr"):
                raise endpoint_spec.error("mode", f"must be vip or dnsrr; got {endpoint_mode!r}")
            endpoint["Mode"] = endpoint_mode
        ports = []
        for item in endpoint_spec.objects("ports"):
            target = item.integer("targetPort")
            if not target:
                raise item.error("targetPort", "is required")
            port: dict[str, Any] = {
                "Protocol": item.string("protocol", "tcp") or "tcp",
                "TargetPort": target,
                "PublishMode": item.string("publishMode", "ingress") or "ingress",
            }
            if item.string("name"):
                port["Name"] = item.string("name")
            published = item.integer("publishedPort", 0)
            if published:
                port["PublishedPort"] = published
            ports.append(port)
        if ports:
            endpoint["Ports"] = ports
    spec["EndpointSpec"] = endpoint
    converge = None
    converge_config = f.obj("convergeConfig")
    if converge_config is not None:
        if service_mode.get("Global") is not None:
            raise converge_config.error("delay", "conflicts with mode.global")
        timeout_text = converge_config.string("timeout", "3m") or "3m"
        converge = ConvergePlan(
            delay_seconds=_go_duration(converge_config, "delay", "7s") / 1e9,
            timeout_seconds=_go_duration(converge_config, "timeout", "3m") / 1e9,
            timeout_text=timeout_text,
        )
    if f.has("auth"):
        raise f.error("auth", "registries are not supported (no registry is reachable)")
    plan = ServicePlan(
        name=name,
        spec=spec,
        converge=converge,
        stop_grace_seconds=spec["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] / 1e9,
    )
    f.finish()
    return plan


__all__ = [
    "CONTAINER",
    "IMAGE",
    "NETWORK",
    "REMOTE_IMAGE",
    "SECRET",
    "SERVICE",
    "SERVICE_CONFIG",
    "TAG",
    "VOLUME",
    "ContainerPlan",
    "ConvergePlan",
    "ServicePlan",
    "SwarmObjectPlan",
    "ImageBuildPlan",
    "NetworkPlan",
    "RemoteImagePlan",
    "TagPlan",
    "UnsupportedInput",
    "UploadFile",
    "VolumePlan",
    "map_container",
    "map_image",
    "map_network",
    "map_remote_image",
    "map_secret",
    "map_service",
    "map_service_config",
    "map_tag",
    "map_volume",
    "parse_cpus",
    "parse_duration_ns",
    "split_image_reference",
    "uploads_archive",
]
