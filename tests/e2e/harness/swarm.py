"""Make the test engine a single-node swarm manager for the duration of a block.

    with swarm_manager() as swarm:
        apply_program(...)          # docker.Service, docker.Secret, docker.ServiceConfig now apply

On these machines (see the design notes) the ingress routing mesh does not work (no IPVS): services
publish their ports in host mode and resolve by DNS round robin (`endpoint_spec.mode = "dnsrr"`).
Several engines may run on one host (one per clone's test run), so everything a swarm puts in
the host's namespaces is made this engine's own before `swarm init`:

- `docker_gwbridge` gets a bridge interface named after the engine (`gw-<8 hex>`), not the
  default `docker_gwbridge` interface another engine would also create;
- the swarm's listen/advertise port and its VXLAN data-path port move by E2E_PORT_OFFSET;
- overlay subnets come from a 10.2xx.0.0/16 pool, outside the engines' local pools (10.100–10.199).

An engine that is already an active swarm manager is used as it is and left in the swarm; a
`docker_gwbridge` that existed before is used and left in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import docker.errors

from tests.e2e.host_networks import changing_networks

from . import engine

log = logging.getLogger(__name__)

DEFAULT_PORT_OFFSET = 1000
SWARM_PORT = 12377
DATA_PATH_PORT = 14789
GWBRIDGE = "docker_gwbridge"
LOCAL_POOL_FIRST, LOCAL_POOL_LAST = 100, 199


class SwarmError(RuntimeError):
    """The engine could not be made a swarm manager."""


@dataclass(frozen=True)
class SwarmSettings:
    """How this engine joins the host: ports, bridge name and address pool of its own."""

    listen_port: int
    data_path_port: int
    gwbridge_interface: str
    address_pool: str


def swarm_settings(docker_host: str, port_offset: int) -> SwarmSettings:
    """The swarm settings for the engine at `docker_host` whose tests move host ports by `port_offset`.

    The bridge interface name is derived from the engine's address (max 15 characters, Linux's
    limit); the address pool's second octet from the offset, in 200–255.
    """
    digest = hashlib.sha256(docker_host.encode()).hexdigest()[:8]
    octet = 200 + (port_offset // 1000) % 56
    return SwarmSettings(
        listen_port=SWARM_PORT + port_offset,
        data_path_port=DATA_PATH_PORT + port_offset,
        gwbridge_interface=f"gw-{digest}",
        address_pool=f"10.{octet}.0.0/16",
    )


def current_settings() -> SwarmSettings:
    """The settings for the engine named by DOCKER_HOST and the tests' E2E_PORT_OFFSET."""
    offset = int(os.environ.get("E2E_PORT_OFFSET", str(DEFAULT_PORT_OFFSET)) or DEFAULT_PORT_OFFSET)
    return swarm_settings(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"), offset)


@dataclass(frozen=True)
class Swarm:
    """The swarm the block runs in."""

    node_id: str
    settings: SwarmSettings
    initialised: bool
    """True when `swarm_manager` created the swarm (and will leave it)."""
    gwbridge_created: bool
    """True when `swarm_manager` created docker_gwbridge (and will remove it)."""


def _swarm_state(api: docker.APIClient) -> tuple[str, bool, str]:
    info = api.info().get("Swarm") or {}
    return info.get("LocalNodeState", "inactive"), bool(info.get("ControlAvailable")), info.get("NodeID", "")


def _create_gwbridge(api: docker.APIClient, settings: SwarmSettings) -> bool:
    """Create docker_gwbridge with a bridge interface of this engine's own; False if it already exists."""
    with contextlib.suppress(docker.errors.NotFound):
        api.inspect_network(GWBRIDGE)
        log.info("%s exists already: used as it is", GWBRIDGE)
        return False
    # The options `dockerd` itself gives docker_gwbridge, with the interface name ours.
    with changing_networks():
        api.create_network(
            GWBRIDGE,
            driver="bridge",
            options={
                "com.docker.network.bridge.name": settings.gwbridge_interface,
                "com.docker.network.bridge.enable_icc": "false",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
            },
        )
    return True


def _remove_gwbridge(api: docker.APIClient) -> None:
    try:
        with changing_networks():
            api.remove_network(GWBRIDGE)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        log.warning("could not remove %s: %s", GWBRIDGE, exc.explanation or exc)


@contextlib.contextmanager
def swarm_manager(client: docker.DockerClient | None = None, advertise_addr: str = "127.0.0.1") -> Iterator[Swarm]:
    """The engine (DOCKER_HOST) as a single-node swarm manager while the block runs.

    Initialises the swarm (advertised on `advertise_addr`, 127.0.0.1 unless other nodes are to
    reach it) unless the engine already manages one, and on exit leaves it (`swarm leave --force`)
    and removes the docker_gwbridge it created. A swarm this function did not create is never
    left. Other test processes wait for the block to end.
    """
    with _engine_lock():
        yield from _managed_swarm(client, advertise_addr)


@contextlib.contextmanager
def _engine_lock() -> Iterator[None]:
    """One swarm user of the engine at a time: test processes run modules in parallel on one
    engine, and the first to finish would otherwise leave the swarm under the others."""
    directory = os.environ.get("E2E_ENGINE_DIR") or tempfile.gettempdir()
    with open(os.path.join(directory, "swarm.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _managed_swarm(client: docker.DockerClient | None, advertise_addr: str) -> Iterator[Swarm]:
    owned_client = client is None
    client = client if client is not None else engine.connect()
    api = client.api
    settings = current_settings()
    gwbridge_created = False
    initialised = False
    try:
        state, manager, node_id = _swarm_state(api)
        if state == "active" and not manager:
            raise SwarmError("the engine is a swarm worker, not a manager; services cannot be created from it")
        if state != "active":
            gwbridge_created = _create_gwbridge(api, settings)
            try:
                with changing_networks():
                    node_id = api.init_swarm(
                        advertise_addr=f"{advertise_addr}:{settings.listen_port}",
                        listen_addr=f"0.0.0.0:{settings.listen_port}",
                        default_addr_pool=[settings.address_pool],
                        subnet_size=24,
                        data_path_port=settings.data_path_port,
                    )
                initialised = True
            except docker.errors.APIError as exc:
                # Another user of the engine may have initialised it meanwhile: use theirs.
                state, manager, node_id = _swarm_state(api)
                if state != "active" or not manager:
                    if gwbridge_created:
                        _remove_gwbridge(api)
                        gwbridge_created = False
                    raise SwarmError(f"swarm init failed: {exc.explanation or exc}") from None
        yield Swarm(node_id=node_id, settings=settings, initialised=initialised, gwbridge_created=gwbridge_created)
    finally:
        try:
            if initialised:
                try:
                    with changing_networks():
                        api.leave_swarm(force=True)
                except docker.errors.APIError as exc:
                    log.warning("swarm leave failed: %s", exc.explanation or exc)
            if gwbridge_created:
                _remove_gwbridge(api)
        finally:
            if owned_client:
                client.close()


__all__ = ["Swarm", "SwarmError", "SwarmSettings", "current_settings", "swarm_manager", "swarm_settings"]
