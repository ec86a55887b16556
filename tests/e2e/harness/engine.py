"""Apply mapped plans to a Docker engine, and take the objects away again.

The order within one container follows the provider: create (joined to its first network),
connect the other networks, upload files, start, then wait for `healthy` (`wait`), for the exit
(`attach`), or check it is running (`mustRun`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from .docker_mapping import (
    MB,
    ContainerPlan,
    ImageBuildPlan,
    NetworkPlan,
    ServicePlan,
    SwarmObjectPlan,
    TagPlan,
    VolumePlan,
    split_image_reference,
    uploads_archive,
)
from tests.e2e.host_networks import changing_networks
from tests.go_values import go_duration_text

log = logging.getLogger(__name__)

API_TIMEOUT_SECONDS = 300
ATTACH_TIMEOUT_SECONDS = 900
HEALTH_POLL_SECONDS = 0.2
LOG_LINES_IN_ERRORS = 40


class EngineError(RuntimeError):
    """The engine refused an operation, or a container did not reach the state asked for."""


def connect() -> docker.DockerClient:
    """A client for the engine named by DOCKER_HOST (default: the local socket)."""
    # Many resources are applied in parallel threads: give each its own pooled connection.
    return docker.from_env(timeout=API_TIMEOUT_SECONDS, max_pool_size=64)


def engine_unavailable_reason() -> str | None:
    """Why no Docker engine can be used here, or None when one answers."""
    try:
        client = docker.from_env(timeout=10)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        return f"no Docker engine answers ({exc}); start one with tests/e2e/engine.sh start"
    return None


def image_present(api: docker.APIClient, reference: str) -> dict[str, Any] | None:
    try:
        return api.inspect_image(reference)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.NotFound:
        return None


def require_image(api: docker.APIClient, reference: str, what: str) -> dict[str, Any]:
    found = image_present(api, reference)
    if found is None:
        raise EngineError(
            f"{what}: image {reference!r} is not present on the engine and no registry is reachable; "
            "build or import it first"
        )
    return found


# --- containers -----------------------------------------------------------------------------------


@dataclass
class ContainerOutcome:
    id: str
    inspect: dict[str, Any]
    exit_code: int | None = None
    logs: str | None = None


def last_log_lines(api: docker.APIClient, container_id: str, lines: int = LOG_LINES_IN_ERRORS) -> str:
    try:
        text = api.logs(container_id, stdout=True, stderr=True, tail=lines).decode(errors="replace")
    except docker.errors.APIError as exc:
        return f"(logs unavailable: {exc.explanation or exc})"
    return text.rstrip("\n") or "(no output)"


def _health_summary(state: dict[str, Any]) -> str:
    health = state.get("Health") or {}
    entries = health.get("Log") or []
    if not entries:
        return f"health status {health.get('Status', 'none')!r}, no check has completed"
    last = entries[-1]
    output = (last.get("Output") or "").strip() or "(no output)"
    return (
        f"health status {health.get('Status')!r}, failing streak {health.get('FailingStreak', 0)}; "
        f"last check exited {last.get('ExitCode')}: {output}"
    )


def _state_summary(state: dict[str, Any]) -> str:
    text = f"state {state.get('Status')!r}"
    if state.get("Status") in ("exited", "dead"):
        text += f", exit code {state.get('ExitCode')}"
        if state.get("OOMKilled"):
            text += " (killed: out of memory)"
        if state.get("Error"):
            text += f", error {state['Error']!r}"
    return text


def _post_json(api: docker.APIClient, path: str, *args: str, data: dict[str, Any]) -> Any:
    # The SDK has no call taking a raw EndpointSettings object; post it as the SDK itself does.
    response = api._post_json(api._url(path, *args), data=data)  # noqa: SLF001
    api._raise_for_status(response)  # noqa: SLF001
    return response


def create_container(
    api: docker.APIClient,
    plan: ContainerPlan,
    on_created: Callable[[str], None],
) -> ContainerOutcome:
    """Create, fill, connect and start the container; `on_created(id)` runs as soon as it exists."""
    where = f"container {plan.name!r}"
    require_image(api, plan.image, where)
    try:
        created = api.create_container_from_config(plan.create_body, plan.name)
    except docker.errors.APIError as exc:
        raise EngineError(f"{where}: unable to create: {exc.explanation or exc}") from None
    container_id: str = created["Id"]
    on_created(container_id)
    try:
        if plan.connect_after_create:
            _leave_default_bridge(api, container_id)
        for network, settings in plan.connect_after_create:
            _post_json(
                api, "/networks/{0}/connect", network, data={"Container": container_id, "EndpointConfig": settings}
            )
        if plan.uploads:
            api.put_archive(container_id, "/", uploads_archive(plan.uploads))
        if not plan.start:
            return ContainerOutcome(container_id, api.inspect_container(container_id))
        log_reader = _LogCollector(api, container_id) if plan.attach and plan.logs else None
        api.start(container_id)
        if log_reader is not None:
            log_reader.start()
    except docker.errors.APIError as exc:
        raise EngineError(f"{where}: {exc.explanation or exc}") from None

    if plan.wait:
        _wait_healthy(api, container_id, plan)
    if plan.attach:
        return _wait_exit(api, container_id, plan, log_reader)
    inspect = api.inspect_container(container_id)
    if plan.must_run and not inspect["State"].get("Running"):
        raise EngineError(
            f"{where} is not running after start ({_state_summary(inspect['State'])}); "
            f"last log lines:\n{last_log_lines(api, container_id)}"
        )
    return ContainerOutcome(container_id, inspect)


def _leave_default_bridge(api: docker.APIClient, container_id: str) -> None:
    try:
        api.disconnect_container_from_network(container_id, "bridge")
    except docker.errors.APIError as exc:
        if "is not connected" not in str(exc):
            raise


# The fields whose change makes the provider's Update call ContainerUpdate.
UPDATED_IN_PLACE = {"restart", "maxRetryCount", "cpuShares", "memory", "memoryReservation", "cpuSet", "memorySwap"}


def update_container(api: docker.APIClient, container_id: str, declared: dict[str, Any], changed: list[str]) -> None:
    """The provider's Update: one ContainerUpdate when a resource or restart field changed, else nothing.

    It sends memory, reservation, CPU shares and set, and the restart policy from the program's
    values, and the swap limit only when the program sets one (otherwise Docker keeps the old
    one, and refuses a memory limit above it). Everything else that may change in place
    (health check, grace period, wait) changes only the stored state.
    """
    if not set(changed) & UPDATED_IN_PLACE:
        return
    body: dict[str, Any] = {
        "CpuShares": int(declared.get("cpuShares") or 0),
        "Memory": int(declared.get("memory") or 0) * MB,
        "MemoryReservation": int(declared.get("memoryReservation") or 0) * MB,
        "CpusetCpus": declared.get("cpuSet") or "",
        "RestartPolicy": {"Name": declared.get("restart") or "no", "MaximumRetryCount": int(declared.get("maxRetryCount") or 0)},
    }
    swap = int(declared.get("memorySwap") or 0)
    if swap:
        body["MemorySwap"] = swap * MB if swap > 0 else swap
    try:
        _post_json(api, "/containers/{0}/update", container_id, data=body)
    except docker.errors.APIError as exc:
        raise EngineError(f"container {container_id[:12]}: unable to update: {exc.explanation or exc}") from None


CRASH_LOOP_RESTARTS = 3


def _wait_healthy(api: docker.APIClient, container_id: str, plan: ContainerPlan) -> None:
    where = f"container {plan.name!r}"
    deadline = time.monotonic() + plan.wait_timeout_seconds
    restarts = plan.create_body["HostConfig"]["RestartPolicy"]["Name"] != "no"
    while True:
        try:
            inspect = api.inspect_container(container_id)
        except docker.errors.NotFound:
            raise EngineError(f"{where} exited and was removed ('rm') while waiting to become healthy") from None
        state = inspect["State"]
        health = state.get("Health")
        if health is None:
            raise EngineError(
                f"{where}: 'wait' is set but the container has no health check; add a 'healthcheck' or remove 'wait'"
            )
        if health.get("Status") == "healthy":
            return
        if restarts and inspect.get("RestartCount", 0) >= CRASH_LOOP_RESTARTS:
            # A crash loop will not end in health; the provider would wait out the timeout.
            raise EngineError(
                f"{where} is crash-looping ({CRASH_LOOP_RESTARTS} restarts while waiting to become healthy); "
                f"{_health_summary(state)}; last log lines:\n{last_log_lines(api, container_id)}"
            )
        if state.get("Status") in ("exited", "dead") and not restarts:
            # It will not become healthy any more; report now rather than at the timeout.
            raise EngineError(
                f"{where} stopped while waiting to become healthy ({_state_summary(state)}); "
                f"{_health_summary(state)}; last log lines:\n{last_log_lines(api, container_id)}"
            )
        if time.monotonic() >= deadline:
            raise EngineError(
                f"{where} did not become healthy within {plan.wait_timeout_seconds}s ({_state_summary(state)}); "
                f"{_health_summary(state)}; last log lines:\n{last_log_lines(api, container_id)}"
            )
        time.sleep(HEALTH_POLL_SECONDS)


class _LogCollector:
    """Follows a container's output from its start, so nothing is lost if it is removed on exit."""

    def __init__(self, api: docker.APIClient, container_id: str) -> None:
        self._stream = api.attach(container_id, stdout=True, stderr=True, stream=True, logs=True)
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> None:
        for chunk in self._stream:
            self._chunks.append(chunk)

    def text(self, timeout: float = 10) -> str:
        self._thread.join(timeout)
        return b"".join(self._chunks).decode(errors="replace")


def _wait_exit(
    api: docker.APIClient, container_id: str, plan: ContainerPlan, log_reader: _LogCollector | None
) -> ContainerOutcome:
    where = f"container {plan.name!r}"
    try:
        result = api.wait(container_id, timeout=ATTACH_TIMEOUT_SECONDS)
    except docker.errors.NotFound:
        # Removed on exit (rm) before the wait began: the exit code is gone with it.
        result = {"StatusCode": None}
    except Exception as exc:  # noqa: BLE001 - timeouts surface as requests errors
        raise EngineError(f"{where}: did not exit within {ATTACH_TIMEOUT_SECONDS}s: {exc}") from None
    logs = log_reader.text() if log_reader is not None else None
    try:
        inspect = api.inspect_container(container_id)
    except docker.errors.NotFound:
        inspect = {"Id": container_id, "Name": "/" + plan.name, "State": {}, "NetworkSettings": {}, "Config": {}}
    return ContainerOutcome(container_id, inspect, exit_code=result.get("StatusCode"), logs=logs)


def container_outputs(outcome: ContainerOutcome) -> dict[str, Any]:
    """Computed Container outputs, under the provider's names."""
    inspect = outcome.inspect
    settings = inspect.get("NetworkSettings") or {}
    network_datas = [
        {
            "networkName": network,
            "ipAddress": data.get("IPAddress", ""),
            "ipPrefixLength": data.get("IPPrefixLen", 0),
            "gateway": data.get("Gateway", ""),
            "globalIpv6Address": data.get("GlobalIPv6Address", ""),
            "globalIpv6PrefixLength": data.get("GlobalIPv6PrefixLen", 0),
            "ipv6Gateway": data.get("IPv6Gateway", ""),
            "macAddress": data.get("MacAddress", ""),
        }
        for network, data in (settings.get("Networks") or {}).items()
    ]
    outputs: dict[str, Any] = {
        "name": (inspect.get("Name") or "").lstrip("/"),
        "networkDatas": network_datas,
        "bridge": settings.get("Bridge", ""),
    }
    hostname = (inspect.get("Config") or {}).get("Hostname")
    if hostname:
        outputs["hostname"] = hostname
    ports = []
    for port, bindings in (settings.get("Ports") or {}).items():
        internal, _, protocol = port.partition("/")
        for binding in bindings or []:
            if not binding.get("HostPort"):
                continue
            ports.append(
                {
                    "internal": int(internal),
                    "external": int(binding["HostPort"]),
                    "ip": binding["HostIp"],
                    "protocol": protocol,
                }
            )
    if ports:
        outputs["ports"] = ports
    state = inspect.get("State") or {}
    if outcome.exit_code is not None:
        outputs["exitCode"] = outcome.exit_code
    elif state and not state.get("Running"):
        outputs["exitCode"] = state.get("ExitCode")
    if outcome.logs is not None:
        outputs["containerLogs"] = outcome.logs
    return outputs


def remove_container(api: docker.APIClient, container_id: str, grace_seconds: int, remove_volumes: bool) -> str:
    """Stop (waiting `grace_seconds`, default 0 as the provider) and remove; gone already is fine.

    Returns what the container wrote, up to its removal (so a test can see how it shut down).
    """
    logs = ""
    try:
        # The client's HTTP timeout must outlast the grace period the engine waits.
        api.stop(container_id, timeout=grace_seconds)
        logs = api.logs(container_id).decode(errors="replace")
        api.remove_container(container_id, v=remove_volumes, force=True)
    except docker.errors.NotFound:
        return logs
    except docker.errors.APIError as exc:
        if "is already in progress" not in str(exc):
            raise
    # As the provider (ContainerWait "removed"): gone, not only asked to go, before the next
    # step removes the networks it was on.
    _wait_removed(api, container_id)
    return logs


CONTAINER_REMOVE_TIMEOUT_SECONDS = 60


def _wait_removed(api: docker.APIClient, container_id: str) -> None:
    deadline = time.monotonic() + CONTAINER_REMOVE_TIMEOUT_SECONDS
    while True:
        try:
            inspect = api.inspect_container(container_id)
        except docker.errors.NotFound:
            return
        if time.monotonic() >= deadline:
            raise EngineError(
                f"container {inspect['Name'].lstrip('/')!r} ({_state_summary(inspect['State'])}) "
                f"was still there {CONTAINER_REMOVE_TIMEOUT_SECONDS}s after its removal"
            )
        time.sleep(HEALTH_POLL_SECONDS)


# --- networks, volumes, images --------------------------------------------------------------------


NETWORK_READ_DELAY_SECONDS = 2


def create_network(api: docker.APIClient, plan: NetworkPlan) -> dict[str, Any]:
    try:
        with changing_networks():
            created = api.create_network(plan.name, **plan.create_kwargs)
    except docker.errors.APIError as exc:
        raise EngineError(f"network {plan.name!r}: unable to create: {exc.explanation or exc}") from None
    # The provider's read-back begins after a delay (networkReadRefreshDelay); a swarm network
    # inspected at once may not report its driver and options yet.
    deadline = time.monotonic() + NETWORK_READ_DELAY_SECONDS
    while True:
        inspect = api.inspect_network(created["Id"])
        if inspect.get("Driver") or time.monotonic() >= deadline:
            return inspect
        time.sleep(HEALTH_POLL_SECONDS)


def network_outputs(inspect: dict[str, Any]) -> dict[str, Any]:
    ipam = inspect.get("IPAM") or {}
    return {
        "name": inspect["Name"],
        "driver": inspect.get("Driver", ""),
        "scope": inspect.get("Scope", ""),
        "internal": bool(inspect.get("Internal")),
        "attachable": bool(inspect.get("Attachable")),
        "ipamDriver": ipam.get("Driver", "default"),
        "ipamConfigs": [
            {
                "subnet": pool.get("Subnet", ""),
                "gateway": pool.get("Gateway", ""),
                "ipRange": pool.get("IPRange", ""),
                "auxAddress": pool.get("AuxiliaryAddresses") or {},
            }
            for pool in ipam.get("Config") or []
        ],
        "options": inspect.get("Options") or {},
    }


NETWORK_REMOVE_TIMEOUT_SECONDS = 30


def remove_network(api: docker.APIClient, network_id: str) -> None:
    """As `resourceDockerNetworkDelete`: retry while the network "has active endpoints" (the
    containers of a removed service are still going), for up to 30 s."""
    def remove() -> None:
        # Locked one try at a time: an isolation check need not wait out the retries' sleeps.
        with changing_networks():
            api.remove_network(network_id)

    try:
        _remove_retrying(remove, "has active endpoints")
    except docker.errors.APIError as exc:
        if "has active endpoints" not in str(exc):
            raise
        raise EngineError(f"{exc.explanation or exc}; still attached: {_attached(api, network_id)}") from None


def _attached(api: docker.APIClient, network_id: str) -> str:
    """Who holds a network: each attached container's name, labels and what started it."""
    endpoints = (api.inspect_network(network_id).get("Containers") or {}).items()
    if not endpoints:
        return "no container (a stale endpoint in the engine)"
    described = []
    for container_id, endpoint in endpoints:
        try:
            inspect = api.inspect_container(container_id)
        except docker.errors.NotFound:
            described.append(f"{endpoint.get('Name')!r} (endpoint of a removed container {container_id[:12]})")
            continue
        labels = inspect["Config"].get("Labels") or {}
        described.append(
            f"{inspect['Name'].lstrip('/')!r} ({_state_summary(inspect['State'])}, image {inspect['Config']['Image']}, "
            f"command {inspect['Config'].get('Cmd')}, labels {labels})"
        )
    return "; ".join(described)


def _remove_retrying(remove: Callable[[], object], busy: str) -> None:
    """Remove, retrying for up to 30 s while Docker answers `busy`; gone already is removed."""
    deadline = time.monotonic() + NETWORK_REMOVE_TIMEOUT_SECONDS
    while True:
        try:
            remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if busy not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(SERVICE_POLL_SECONDS)


def create_volume(api: docker.APIClient, plan: VolumePlan) -> tuple[dict[str, Any], bool]:
    """The volume (created, or the existing one of that name) and whether it existed before."""
    try:
        existing = api.inspect_volume(plan.name)
    except docker.errors.NotFound:
        existing = None
    try:
        volume = api.create_volume(
            plan.name, driver=plan.driver or None, driver_opts=plan.driver_opts or None, labels=plan.labels or None
        )
    except docker.errors.APIError as exc:
        raise EngineError(f"volume {plan.name!r}: unable to create: {exc.explanation or exc}") from None
    return volume, existing is not None


def volume_outputs(inspect: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": inspect["Name"],
        "driver": inspect.get("Driver", "local"),
        "mountpoint": inspect.get("Mountpoint", ""),
    }


def remove_volume(api: docker.APIClient, name: str) -> None:
    """As `resourceDockerVolumeDelete`: forced, retried while the volume "is in use" (by the
    containers of a removed service that swarm is still taking away), for up to 30 s."""
    _remove_retrying(lambda: api.remove_volume(name, force=True), "volume is in use")


def require_platform(image: dict[str, Any], platform: str | None, what: str) -> None:
    """A pull for `platform` gets that variant; here the image present must already be it."""
    if platform is None:
        return
    present = "/".join(part for part in (image.get("Os"), image.get("Architecture"), image.get("Variant")) if part)
    if present != platform:
        raise EngineError(f"{what}: the image present is for {present}, not the platform asked for ({platform})")


def repo_digest(image: dict[str, Any]) -> str:
    """The image's registry digest when it has one; a locally built or imported image has only its id."""
    digests = image.get("RepoDigests") or []
    return digests[0] if digests else image["Id"]


def build_image(api: docker.APIClient, plan: ImageBuildPlan) -> dict[str, Any]:
    where = f"image {plan.image_name!r}"
    if not plan.dockerfile.is_file():
        raise EngineError(f"{where}: Dockerfile {plan.dockerfile} not found")
    build_log: list[str] = []
    try:
        for event in api.build(
            path=str(plan.context),
            dockerfile=str(plan.dockerfile),
            tag=plan.image_name,
            buildargs=plan.build_args or None,
            target=plan.target,
            network_mode=plan.network,
            extra_hosts=dict(host.split(":", 1) for host in plan.extra_hosts) or None,
            platform=plan.platform,
            rm=True,
            forcerm=True,
            decode=True,
        ):
            if "stream" in event:
                build_log.append(event["stream"])
            if "error" in event:
                tail = "".join(build_log).splitlines()[-LOG_LINES_IN_ERRORS:]
                raise EngineError(f"{where}: build failed: {event['error'].strip()}\n" + "\n".join(tail))
    except docker.errors.APIError as exc:
        raise EngineError(f"{where}: build failed: {exc.explanation or exc}") from None
    return require_image(api, plan.image_name, where)


def tag_image(api: docker.APIClient, plan: TagPlan) -> dict[str, Any]:
    source = require_image(api, plan.source_image, f"tag {plan.target_image!r}")
    repository, tag = split_image_reference(plan.target_image)
    api.tag(source["Id"], repository, tag)
    return source


# --- swarm: secrets, configs, services ------------------------------------------------------------


def create_secret(api: docker.APIClient, plan: SwarmObjectPlan) -> dict[str, Any]:
    """POST /secrets/create, then the inspect the provider reads back."""
    try:
        created = api.create_secret(plan.name, plan.data, labels=plan.labels or None)
    except docker.errors.APIError as exc:
        raise EngineError(f"secret {plan.name!r}: unable to create: {exc.explanation or exc}") from None
    return api.inspect_secret(created["ID"])


def create_config(api: docker.APIClient, plan: SwarmObjectPlan) -> dict[str, Any]:
    """POST /configs/create, then the inspect the provider reads back."""
    try:
        created = api.create_config(plan.name, plan.data, labels=plan.labels or None)
    except docker.errors.APIError as exc:
        raise EngineError(f"config {plan.name!r}: unable to create: {exc.explanation or exc}") from None
    return api.inspect_config(created["ID"])


def remove_secret(api: docker.APIClient, secret_id: str) -> None:
    try:
        api.remove_secret(secret_id)
    except docker.errors.NotFound:
        return


def remove_config(api: docker.APIClient, config_id: str) -> None:
    try:
        api.remove_config(config_id)
    except docker.errors.NotFound:
        return


# Task states in the order swarm moves through them (`numberedStates` upstream).
TASK_STATE_ORDER = {
    state: index
    for index, state in enumerate(
        (
            "new",
            "allocated",
            "pending",
            "assigned",
            "accepted",
            "preparing",
            "ready",
            "starting",
            "running",
            "complete",
            "shutdown",
            "failed",
            "rejected",
        ),
        start=1,
    )
}
SERVICE_POLL_SECONDS = 0.25
# resourceDockerServiceUpdate waits 7 s before its first look at a rolling update (its
# StateChangeConf Delay); before then the old task may still count as running.
UPDATE_FIRST_LOOK_SECONDS = 7.0


def running_replicas(service: dict[str, Any], tasks: list[dict[str, Any]], active_nodes: set[str]) -> tuple[int, int]:
    """(tasks running, replicas wanted), as `replicatedConsoleLogUpdater.update` counts them.

    One task per slot (the lowest desired state wins, then the lowest observed state), on an
    active node; it counts when its desired state is not past running and it is running. With a
    health check, swarm reports a task `starting` until the check passes: running means healthy.
    """
    replicated = ((service.get("Spec") or {}).get("Mode") or {}).get("Replicated")
    if replicated is None or replicated.get("Replicas") is None:
        raise EngineError(f"service {service['Spec']['Name']!r}: no replica count (only replicated services converge)")
    by_slot: dict[int, dict[str, Any]] = {}
    for task in tasks:
        desired = TASK_STATE_ORDER.get(task.get("DesiredState", ""), 0)
        observed = TASK_STATE_ORDER.get((task.get("Status") or {}).get("State", ""), 0)
        if desired == 0 or observed == 0:
            continue
        slot = task.get("Slot", 0)
        existing = by_slot.get(slot)
        if existing is not None:
            existing_desired = TASK_STATE_ORDER[existing["DesiredState"]]
            if existing_desired < desired:
                continue
            if existing_desired == desired and TASK_STATE_ORDER[existing["Status"]["State"]] <= observed:
                continue
        if task.get("NodeID") and task["NodeID"] not in active_nodes:
            continue
        by_slot[slot] = task
    running = sum(
        1
        for task in by_slot.values()
        if TASK_STATE_ORDER[task["DesiredState"]] <= TASK_STATE_ORDER["running"] and task["Status"]["State"] == "running"
    )
    return running, int(replicated["Replicas"])


class ServiceDidNotConverge(EngineError):
    """The provider's DidNotConvergeError, or its error for a rolled back or paused update."""


def _service_tasks(api: docker.APIClient, service_id: str) -> list[dict[str, Any]]:
    return api.tasks(filters={"service": service_id, "desired-state": "running"})


def _active_nodes(api: docker.APIClient) -> set[str]:
    return {node["ID"] for node in api.nodes() if (node.get("Status") or {}).get("State") != "down"}


def _task_report(api: docker.APIClient, service_id: str) -> str:
    """The latest tasks' states and errors, and the last log lines of the newest container."""
    tasks = sorted(api.tasks(filters={"service": service_id}), key=lambda task: task.get("CreatedAt", ""), reverse=True)
    lines = [
        f"task {task['ID'][:12]}: {task['Status'].get('State')} (desired {task.get('DesiredState')})"
        + (f": {task['Status']['Err']}" if task["Status"].get("Err") else "")
        for task in tasks[:5]
    ]
    container_id = next(
        (((task["Status"].get("ContainerStatus") or {}).get("ContainerID")) for task in tasks if (task["Status"].get("ContainerStatus") or {}).get("ContainerID")),
        None,
    )
    if container_id:
        lines.append(f"last log lines:\n{last_log_lines(api, container_id)}")
    return "\n".join(lines) or "no tasks"


def _did_not_converge(service_id: str, plan: ServicePlan) -> str:
    assert plan.converge is not None
    timeout = go_duration_text(int(plan.converge.timeout_seconds * 1_000_000_000))
    return f"Service with ID ({service_id}) did not converge after {timeout}"


def create_service(api: docker.APIClient, plan: ServicePlan, on_created: Callable[[str], None]) -> dict[str, Any]:
    """The provider's Create: ServiceCreate, then (with convergeConfig) wait until every replica
    runs; a service that does not converge in time is deleted and the create fails. Returns the
    inspect the provider reads back."""
    where = f"service {plan.name!r}"
    require_image(api, plan.spec["TaskTemplate"]["ContainerSpec"]["Image"], where)
    try:
        service_id = _post_json(api, "/services/create", data=plan.spec).json()["ID"]
    except docker.errors.APIError as exc:
        raise EngineError(f"{where}: unable to create: {exc.explanation or exc}") from None
    on_created(service_id)
    if plan.converge is not None:
        deadline = time.monotonic() + plan.converge.timeout_seconds
        while True:
            service = api.inspect_service(service_id)
            running, replicas = running_replicas(service, _service_tasks(api, service_id), _active_nodes(api))
            if running == replicas:
                break
            if time.monotonic() >= deadline:
                report = _task_report(api, service_id)
                remove_service(api, service_id, plan.stop_grace_seconds)
                raise ServiceDidNotConverge(f"{where}: {_did_not_converge(service_id, plan)}; {report}")
            time.sleep(SERVICE_POLL_SECONDS)
    return _read_service(api, service_id)


def _read_service(api: docker.APIClient, service_id: str) -> dict[str, Any]:
    """resourceDockerServiceReadRefreshFunc waits until the service exposes its endpoint mode."""
    deadline = time.monotonic() + 30
    while True:
        service = api.inspect_service(service_id)
        if (service.get("Endpoint") or {}).get("Spec", {}).get("Mode") or (service["Spec"].get("EndpointSpec") or {}).get("Mode"):
            return service
        if time.monotonic() >= deadline:
            raise EngineError(f"service {service['Spec']['Name']!r}: no endpoint spec after 30s")
        time.sleep(SERVICE_POLL_SECONDS)


def update_progress(service: dict[str, Any], running: int, replicas: int, seconds_since_update: float) -> str:
    """"completed" or "updating" for a service after ServiceUpdate, or raise as the provider's
    `resourceDockerServiceUpdateRefreshFunc` does: a rollback that completed, or an update or
    rollback that paused, fails the update (with swarm's message)."""
    status = service.get("UpdateStatus") or {}
    state = status.get("State")
    message = status.get("Message", "")
    rollback = False
    if state == "completed":
        return "completed"
    if state == "rollback_completed":
        raise ServiceDidNotConverge(f"service rollback completed: {message}")
    if state == "paused":
        raise ServiceDidNotConverge(f"service update paused: {message}")
    if state == "rollback_paused":
        raise ServiceDidNotConverge(f"service rollback paused: {message}")
    if state == "rollback_started":
        rollback = True
    if seconds_since_update < UPDATE_FIRST_LOOK_SECONDS:
        # The provider has not looked yet (swarm may not even have begun the rolling update).
        return "updating"
    if running == replicas:
        if rollback:
            raise ServiceDidNotConverge(f"service rollback completed: {message}")
        return "completed"
    return "updating"


def update_service(api: docker.APIClient, service_id: str, plan: ServicePlan) -> dict[str, Any]:
    """The provider's Update: ServiceUpdate with the service's current version index and the
    whole new spec, then (with convergeConfig) wait for the rolling update to complete. Returns
    the inspect the provider reads back."""
    where = f"service {plan.name!r}"
    require_image(api, plan.spec["TaskTemplate"]["ContainerSpec"]["Image"], where)
    version = api.inspect_service(service_id)["Version"]["Index"]
    try:
        _post_json(api, "/services/{0}/update?version={1}", service_id, str(version), data=plan.spec)
    except docker.errors.APIError as exc:
        raise EngineError(f"{where}: unable to update: {exc.explanation or exc}") from None
    if plan.converge is not None:
        started = time.monotonic()
        deadline = started + plan.converge.timeout_seconds
        while True:
            service = api.inspect_service(service_id)
            running, replicas = running_replicas(service, _service_tasks(api, service_id), _active_nodes(api))
            try:
                if update_progress(service, running, replicas, time.monotonic() - started) == "completed":
                    break
            except ServiceDidNotConverge as exc:
                raise ServiceDidNotConverge(f"{where}: {exc}; {_task_report(api, service_id)}") from None
            if time.monotonic() >= deadline:
                raise ServiceDidNotConverge(f"{where}: {_did_not_converge(service_id, plan)}; {_task_report(api, service_id)}")
            time.sleep(SERVICE_POLL_SECONDS)
    return _read_service(api, service_id)


def remove_service(api: docker.APIClient, service_id: str, stop_grace_seconds: float) -> None:
    """The provider's `deleteService`: remove the service; with a stop grace period, wait up to
    that long for each of its task containers to go, then remove what is left (forced)."""
    containers: list[str] = []
    if stop_grace_seconds > 0:
        with contextlib.suppress(docker.errors.NotFound):
            for task in api.tasks(filters={"service": service_id}):
                container_id = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID", "")
                if container_id.strip() and task["Status"].get("State") != "shutdown":
                    containers.append(container_id)
    try:
        api.remove_service(service_id)
    except docker.errors.NotFound:
        return
    for container_id in containers:
        deadline = time.monotonic() + stop_grace_seconds
        while time.monotonic() < deadline and _container_exists(api, container_id):
            time.sleep(SERVICE_POLL_SECONDS)
        with contextlib.suppress(docker.errors.NotFound):
            try:
                api.remove_container(container_id, v=True, force=True)
            except docker.errors.APIError as exc:
                if "is already in progress" not in str(exc):
                    raise


def _container_exists(api: docker.APIClient, container_id: str) -> bool:
    try:
        api.inspect_container(container_id)
    except docker.errors.NotFound:
        return False
    return True


def service_outputs(inspect: dict[str, Any]) -> dict[str, Any]:
    return {"name": inspect["Spec"]["Name"]}
