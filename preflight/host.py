"""What the preflight reads from this machine and its Docker engine. Nothing here changes anything."""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROC_NET = Path("/proc/net")
TCP_LISTEN = "0A"
TIME_ERROR = 5
"""adjtimex's answer while the kernel's clock is not synchronised (STA_UNSYNC set)."""
PUBLIC_ADDRESSES_VARIABLE = "SELFHOSTED_PUBLIC_ADDRESSES"


@dataclass(frozen=True)
class Memory:
    total_mb: int
    swap_mb: int


@dataclass(frozen=True)
class Listener:
    """A TCP socket listening on this machine."""

    address: str
    port: int


@dataclass(frozen=True)
class Engine:
    version: str
    driver: str
    root_dir: str
    runtimes: tuple[str, ...] = ()
    """The container runtimes the engine knows (`nvidia` once the NVIDIA Container Toolkit set it up)."""


def memory(meminfo: Path = Path("/proc/meminfo")) -> Memory:
    """The machine's memory and swap, in MB."""
    values = {}
    for line in meminfo.read_text().splitlines():
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0])
    return Memory(total_mb=values["MemTotal"] // 1024, swap_mb=values["SwapTotal"] // 1024)


def _ipv4(hex_address: str) -> str:
    return str(ipaddress.IPv4Address(bytes.fromhex(hex_address)[::-1]))


def _ipv6(hex_address: str) -> str:
    # /proc prints the address as four 32-bit words, each in the machine's (little-endian) order.
    words = [bytes.fromhex(hex_address[index : index + 8])[::-1] for index in range(0, 32, 8)]
    return str(ipaddress.IPv6Address(b"".join(words)))


def listeners(proc_net: Path = PROC_NET) -> list[Listener]:
    """Every listening TCP socket of this machine's network namespace (IPv4 and IPv6)."""
    found = []
    for name, decode in (("tcp", _ipv4), ("tcp6", _ipv6)):
        table = proc_net / name
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != TCP_LISTEN:
                continue
            address, port = fields[1].split(":")
            found.append(Listener(decode(address), int(port, 16)))
    return found


def local_addresses(proc_net: Path = PROC_NET) -> set[str]:
    """The addresses of this machine's interfaces, plus those named in SELFHOSTED_PUBLIC_ADDRESSES.

    A host behind 1:1 NAT (many clouds) does not carry its public address on an interface: name
    it in that variable (comma-separated).
    """
    addresses = set()
    fib_trie = proc_net / "fib_trie"
    if fib_trie.exists():
        last = None
        for line in fib_trie.read_text().splitlines():
            match = re.search(r"\|-- (\S+)", line)
            if match:
                last = match.group(1)
            elif "/32 host LOCAL" in line and last:
                addresses.add(last)
    if_inet6 = proc_net / "if_inet6"
    if if_inet6.exists():
        addresses |= {_ipv6_plain(line.split()[0]) for line in if_inet6.read_text().splitlines() if line.strip()}
    named = os.environ.get(PUBLIC_ADDRESSES_VARIABLE, "")
    addresses |= {str(ipaddress.ip_address(item.strip())) for item in named.split(",") if item.strip()}
    return addresses


def _ipv6_plain(hex_address: str) -> str:
    """if_inet6 prints addresses in network order, unlike the tcp6 table."""
    return str(ipaddress.IPv6Address(bytes.fromhex(hex_address)))


def resolve(host: str) -> list[str]:
    """The addresses `host` resolves to here; empty when it does not resolve."""
    try:
        answers = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return []
    return sorted({str(ipaddress.ip_address(answer[4][0])) for answer in answers})


def clock_synchronized() -> bool:
    """Whether the kernel's clock is kept in sync (by systemd-timesyncd, chrony or ntpd), as timedatectl reads it."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    timex = ctypes.create_string_buffer(256)  # struct timex with modes 0: read only
    return libc.adjtimex(timex) != TIME_ERROR


def free_mb(path: str) -> int:
    """Free space for unprivileged writers at `path`, or at its nearest existing parent, in MB."""
    place = Path(path)
    while not place.exists():
        place = place.parent
    stat = os.statvfs(place)
    return stat.f_bavail * stat.f_frsize // (1024 * 1024)


def _docker(docker_host: str | None, *args: str) -> str:
    command = ["docker", *(["-H", docker_host] if docker_host else []), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout


def engine(docker_host: str | None) -> Engine | None:
    """The Docker engine's version, storage driver and data root; None when no engine answers."""
    try:
        info = json.loads(_docker(docker_host, "info", "--format", "{{json .}}"))
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        return None
    if not info.get("ServerVersion"):
        return None
    return Engine(
        version=info["ServerVersion"],
        driver=info["Driver"],
        root_dir=info["DockerRootDir"],
        runtimes=tuple(sorted(info.get("Runtimes") or {})),
    )


GPU_HOOK = "nvidia-container-runtime-hook"
"""The NVIDIA Container Toolkit's hook: with it on the engine's PATH, Docker hands GPUs to containers."""


def gpu_hook_installed() -> bool:
    return shutil.which(GPU_HOOK) is not None


def stack_ports(docker_host: str | None, project: str, stack: str) -> set[Listener]:
    """The host ports the stack's own running containers publish (a redeploy takes them over)."""
    ids = _docker(docker_host, "ps", "-q", "--filter", f"label={project}.stack={stack}").split()
    if not ids:
        return set()
    ports = set()
    for container in json.loads(_docker(docker_host, "inspect", *ids)):
        for bindings in (container["NetworkSettings"]["Ports"] or {}).values():
            for binding in bindings or []:
                ports.add(Listener(binding["HostIp"], int(binding["HostPort"])))
    return ports


_SIZE = re.compile(r"^([\d.]+)\s*([kMGT]?B)$")
_UNIT_MB = {"B": 1e-6, "kB": 1e-3, "MB": 1.0, "GB": 1e3, "TB": 1e6}


def stack_volumes_mb(docker_host: str | None, prefix: str) -> dict[str, float]:
    """What each of the stack's volumes holds, in MB (Docker reports decimal units), by its name after the prefix."""
    volumes = json.loads(_docker(docker_host, "system", "df", "-v", "--format", "{{json .Volumes}}") or "[]")
    sizes = {}
    for volume in volumes or []:
        match = _SIZE.match(volume.get("Size", ""))
        if volume["Name"].startswith(f"{prefix}-") and match:
            sizes[volume["Name"][len(prefix) + 1 :]] = float(match.group(1)) * _UNIT_MB[match.group(2)]
    return sizes
