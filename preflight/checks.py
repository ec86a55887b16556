"""The preflight's findings: each check is a function of the settings and of facts about the host.

A finding is `ok`, a `warning` (the deploy goes on) or `blocking` (the deploy stops before any
resource is touched); each says what to do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from components.images.backup.archives import Projection, project_retention
from config.models import BackupSettings, PublishedPort
from config.profiles import ContainerLimits, size_mb
from preflight.host import Engine, Listener, Memory

Level = Literal["ok", "warning", "blocking"]

SYSTEM_MB = 256
"""Memory the operating system, dockerd and containerd keep for themselves on a small host."""
MINIMUM_ENGINE = (20, 10)
"""Docker 20.10 (Debian 12's docker.io): the oldest engine the program is tested on."""
IMAGES_MB = 4096
"""Room for the images of a stack, pulled or built (the largest stacks' images take about 3 GB)."""
GROWTH_MB = 2048
"""Room for the data to grow (media, databases, logs) before the next check."""
SWAP_STEP_MB = 512
LOCAL_BACKEND = "file://~"
"""Pulumi's local state backend (~/.pulumi): the deploy's default."""
UNSPECIFIED = {"0.0.0.0", "::"}
PART_VOLUMES = {"synapse": "synapse-postgres", "mysql": "voicegrow-mysql", "media": "synapse-data", "bucket": "voicegrow-minio"}
"""The volume whose size stands for each backup part's: a dump or tarball of it is at most about as
large (Synapse's data volume is almost all media store; its signing key is a few bytes)."""
ARCHIVE_VOLUME = "backup"
"""The volume the archives are written to (without backup.host_path)."""


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    message: str


def memory(stack: str, containers: dict[str, ContainerLimits], host: Memory) -> Finding:
    """Reservations must fit the memory; limits are caps that only the memory and swap together need to hold.

    Docker takes a reservation back from a container only when the host runs short, so the sum of
    reservations is what the host must have. Each limit is a cap a container may reach; all of
    them at once, with no swap to spill into, would wake the kernel's OOM killer.
    """
    reserved = sum(limits.reservation_mb for limits in containers.values()) + SYSTEM_MB
    capped = sum(limits.memory_mb for limits in containers.values()) + SYSTEM_MB
    largest = ", ".join(
        f"{name} {limits.reservation_mb}"
        for name, limits in sorted(containers.items(), key=lambda item: -item[1].reservation_mb)[:3]
    )
    if reserved > host.total_mb:
        return Finding(
            "memory",
            "blocking",
            f"the containers reserve {reserved - SYSTEM_MB} MB (largest: {largest}) + {SYSTEM_MB} MB for the system = "
            f"{reserved} MB, more than this host's {host.total_mb} MB: use a host with at least {reserved} MB of memory, "
            "or lower resources.<role>.reservation or turn off a component in the stack file",
        )
    if capped > host.total_mb + host.swap_mb:
        return Finding(
            "memory",
            "warning",
            f"the containers' limits add up to {capped - SYSTEM_MB} MB + {SYSTEM_MB} MB for the system = {capped} MB, "
            f"more than this host's {host.total_mb} MB of memory and {host.swap_mb} MB of swap: if all reach their "
            f"limits at once the kernel kills one; add {swap_mb(containers, host)} MB of swap "
            f"(`scripts/host-basics.sh --swap {stack}`) or use a larger host",
        )
    return Finding(
        "memory",
        "ok",
        f"reservations {reserved} MB and limits {capped} MB (with {SYSTEM_MB} MB for the system) fit "
        f"{host.total_mb} MB of memory and {host.swap_mb} MB of swap",
    )


def swap_mb(containers: dict[str, ContainerLimits], host: Memory) -> int:
    """Swap the host needs so that every container can reach its limit at once, in steps of 512 MB (0: none)."""
    capped = sum(limits.memory_mb for limits in containers.values()) + SYSTEM_MB
    return max(0, math.ceil((capped - host.total_mb) / SWAP_STEP_MB) * SWAP_STEP_MB)


def _collide(first: str, second: str) -> bool:
    return first == second or first in UNSPECIFIED or second in UNSPECIFIED


def ports(published: Iterable[PublishedPort], listening: Iterable[Listener], own: set[Listener]) -> list[Finding]:
    """Every port the stack publishes is free, or held by the stack's own containers (which the deploy replaces)."""
    listening = [listener for listener in listening if listener not in own]
    findings = []
    for port in published:
        taken = [listener for listener in listening if listener.port == port.port and _collide(listener.address, port.address)]
        if taken:
            holder = taken[0]
            findings.append(
                Finding(
                    "ports",
                    "blocking",
                    f"port {port.port} on {port.address} ({port.key}) is taken by another program listening on "
                    f"{holder.address}:{holder.port}: stop it (`ss -ltnp 'sport = :{port.port}'` names it) "
                    f"or set {port.key.split(' ')[0]} to a free port",
                )
            )
    if not findings:
        listed = ", ".join(f"{port.address}:{port.port}" for port in published) or "none"
        findings.append(Finding("ports", "ok", f"every published port is free or the stack's own: {listed}"))
    return findings


def dns(hosts: Iterable[str], resolve: Callable[[str], list[str]], here: set[str]) -> list[Finding]:
    """Each public host resolves, and only to this machine: Let's Encrypt's HTTP-01 check must reach it."""
    findings = []
    for host in hosts:
        addresses = resolve(host)
        if not addresses:
            findings.append(
                Finding(
                    "dns",
                    "blocking",
                    f"{host} does not resolve: create its A (and AAAA) record pointing at this machine before the deploy "
                    "asks Let's Encrypt for a certificate (failed attempts count against its rate limits)",
                )
            )
            continue
        elsewhere = [address for address in addresses if address not in here]
        if elsewhere:
            findings.append(
                Finding(
                    "dns",
                    "blocking",
                    f"{host} resolves to {', '.join(elsewhere)}, which is not this machine: point its records here; "
                    "behind NAT, name this machine's public address in SELFHOSTED_PUBLIC_ADDRESSES",
                )
            )
        else:
            findings.append(Finding("dns", "ok", f"{host} resolves to this machine ({', '.join(addresses)})"))
    return findings


def backup_projection(backup: BackupSettings, parts: list[str], volumes_mb: Mapping[str, float], at: datetime) -> Projection:
    """The archives at retention, each part's copy as large as its volume is now."""
    sizes = {part: round(volumes_mb.get(PART_VOLUMES[part], 0.0) * 1e6) for part in parts}
    return project_retention(backup.part_plans(parts, at), sizes)


def disk_needed_mb(retention_size: str, backups: Projection | None) -> int:
    """Images, Prometheus's samples, room to grow and, with backups, the archives at retention."""
    archives = math.ceil(backups.total_bytes / 1e6) if backups is not None else 0
    return IMAGES_MB + math.ceil(size_mb(retention_size)) + GROWTH_MB + archives


def disk(path: str, free: int, needed: int, archives_mb: int = 0, backups: Projection | None = None) -> Finding:
    """The data root has room for what the stack needs; the archives already there count as room,
    since retention replaces them."""
    room = free + archives_mb
    counted = f"{free} MB free under {path}" + (f" and {archives_mb} MB of archives" if archives_mb else "")
    detail = f" (backups at retention: {backups.described(10**6, 'MB')})" if backups is not None else ""
    if room < needed:
        fix = "free space (`docker system prune` removes unused images) or grow the disk"
        if backups is not None:
            fix += ", or keep fewer copies of the largest part (backup.retention.<part>.keep_count) or take it less often (backup.part_schedules.<part>)"
        return Finding(
            "disk",
            "blocking",
            f"{counted}, the engine's data root; the stack needs {needed} MB (images, metrics, data and "
            f"backups){detail}: {fix}",
        )
    return Finding("disk", "ok", f"{counted}; the stack needs {needed} MB{detail}")


def gpus(found: Engine | None, hook_installed: bool) -> Finding:
    """voicegrow.asr.device 'cuda' gives the server every GPU: Docker needs the NVIDIA Container Toolkit for that."""
    if found is not None and ("nvidia" in found.runtimes or hook_installed):
        return Finding("gpus", "ok", "the NVIDIA Container Toolkit is set up: the VoiceGrow server gets the host's GPUs")
    return Finding(
        "gpus",
        "blocking",
        "voicegrow.asr.device is 'cuda', but Docker cannot hand GPUs to containers here (no `nvidia` runtime, no "
        "nvidia-container-runtime-hook): install the NVIDIA driver and the NVIDIA Container Toolkit "
        "(`nvidia-ctk runtime configure --runtime=docker`, then restart Docker), or set voicegrow.asr.device to 'cpu'",
    )


def engine(found: Engine | None) -> list[Finding]:
    if found is None:
        return [
            Finding(
                "engine",
                "blocking",
                "no Docker engine answers: start it (`systemctl start docker`), or run the deploy without --check to install it",
            )
        ]
    numbers = re.match(r"(\d+)\.(\d+)", found.version)
    version = (int(numbers.group(1)), int(numbers.group(2))) if numbers else (0, 0)
    findings = []
    if version < MINIMUM_ENGINE:
        findings.append(
            Finding(
                "engine",
                "blocking",
                f"Docker {found.version} is older than {MINIMUM_ENGINE[0]}.{MINIMUM_ENGINE[1]}: upgrade the engine "
                "(`apt-get install docker.io` from a current Debian or Ubuntu release)",
            )
        )
    else:
        findings.append(Finding("engine", "ok", f"Docker {found.version}"))
    if found.driver != "overlay2":
        findings.append(
            Finding(
                "engine",
                "warning",
                f"the storage driver is {found.driver}, not overlay2: images and containers may take much more disk and "
                "start slower; set \"storage-driver\": \"overlay2\" in /etc/docker/daemon.json on an ext4 or xfs disk",
            )
        )
    else:
        findings.append(Finding("engine", "ok", "storage driver overlay2"))
    return findings


def clock(synchronized: bool) -> Finding:
    if not synchronized:
        return Finding(
            "clock",
            "warning",
            "the clock is not kept in sync: certificates and Matrix federation need the right time; "
            "enable time sync (`timedatectl set-ntp true`, or install chrony)",
        )
    return Finding("clock", "ok", "the clock is kept in sync")


def state(environment: Mapping[str, str]) -> list[Finding]:
    """Where the stack's state is kept (PULUMI_BACKEND_URL) and whether this deploy can read and decrypt it.

    A shared backend is the team's: a deploy needs its credentials, and a passphrase-encrypted
    stack needs the team's passphrase (a new one generated here would lock the others out).
    """
    backend = environment.get("PULUMI_BACKEND_URL") or LOCAL_BACKEND
    if backend.startswith("file://"):
        return [
            Finding(
                "state",
                "ok",
                f"state in {backend} on this machine (only it can deploy the stack); for a team, set PULUMI_BACKEND_URL "
                "to an S3-compatible bucket (docs/delivery.md: Shared state)",
            )
        ]
    found = [Finding("state", "ok", f"state in {backend}")]
    if backend.startswith("s3://"):
        if not (environment.get("AWS_ACCESS_KEY_ID") and environment.get("AWS_SECRET_ACCESS_KEY")) and not environment.get(
            "AWS_PROFILE"
        ):
            found.append(
                Finding(
                    "state",
                    "blocking",
                    f"no credentials for {backend}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the bucket's access "
                    "key, also for MinIO or Aliyun OSS), or AWS_PROFILE",
                )
            )
        if "endpoint=" not in backend and not (environment.get("AWS_ENDPOINT_URL_S3") or environment.get("AWS_ENDPOINT_URL")):
            found.append(
                Finding(
                    "state",
                    "warning",
                    "no S3 endpoint given: the state goes to Amazon S3; for your own object storage add "
                    "?endpoint=HOST[:PORT] to PULUMI_BACKEND_URL or set AWS_ENDPOINT_URL_S3",
                )
            )
    # A Pulumi Cloud backend (https://) encrypts with its own key by default; the others with a passphrase.
    provider = environment.get("PULUMI_SECRETS_PROVIDER") or ("default" if backend.startswith("https://") else "passphrase")
    passphrase = environment.get("PULUMI_CONFIG_PASSPHRASE") or environment.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if provider == "passphrase" and not passphrase:
        found.append(
            Finding(
                "state",
                "blocking",
                f"the state in {backend} is shared, and its secrets are encrypted with the team's passphrase: set "
                "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE, or PULUMI_SECRETS_PROVIDER to a KMS key "
                "(awskms://..., hashivault://...)",
            )
        )
    return found
