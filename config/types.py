"""Validated value types shared by the settings models; each error says what is expected."""

from __future__ import annotations

import ipaddress
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

# The backup container's own parser: a schedule accepted here is one it can run.
from components.images.backup.cron import CronSchedule, time_zone

_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_IMAGE = re.compile(
    r"^(?P<name>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@sha256:[a-f0-9]{64})?$"
)
_MEMORY = re.compile(r"^(\d+(\.\d+)?)([MG])$")
_LOCALPART = re.compile(r"^[a-z0-9._=/-]{1,64}$")
_SIZE = re.compile(r"^\d+[KMG]$")
_SYNAPSE_DURATION = re.compile(r"^[1-9]\d*[mhdwy]$")
_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
# A registry host as Docker reads one at the start of a reference: a dotted name, localhost, or a port.
_HOST = r"(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+|[a-z0-9-]+(?=:))(:[0-9]{1,5})?"
_REGISTRY_HOST = re.compile(rf"^{_HOST}$")
_MIRROR = re.compile(rf"^{_HOST}(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_PLATFORM = re.compile(r"^linux/(amd64|arm64|arm64/v8|arm/v5|arm/v6|arm/v7|386|ppc64le|s390x|riscv64)$")
# Docker Hub is named `docker.io` in references; these are other names of the same registry.
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


def _domain(value: str) -> str:
    if not isinstance(value, str) or not _DOMAIN.match(value):
        raise ValueError(f"must be a lower-case DNS name like 'matrix.example.com', got {value!r}")
    return value


def _image(value: str) -> str:
    if not isinstance(value, str) or not _IMAGE.match(value):
        raise ValueError(f"must be an image reference like 'postgres:16.10-bookworm', got {value!r}")
    return value


def _memory_mb(value: object) -> int:
    text = str(value).strip().upper()
    match = _MEMORY.match(text)
    if not match:
        raise ValueError(f"must be like '512M' or '1.5G', got {value!r}")
    amount = float(match.group(1)) * (1024 if match.group(3) == "G" else 1)
    if amount < 4:
        raise ValueError(f"must be at least 4M, got {value!r}")
    return int(amount)


def _localpart(value: str) -> str:
    if not isinstance(value, str) or not _LOCALPART.match(value):
        raise ValueError(f"must be a Matrix user name of a-z, 0-9 and ._=/- (no '@' or ':'), got {value!r}")
    return value


def _upload_size(value: str) -> str:
    if not isinstance(value, str) or not _SIZE.match(value):
        raise ValueError(f"must be like '8M' or '1G', got {value!r}")
    return value


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"must be an IP address like '127.0.0.1', got {value!r}") from None
    return value


def _http_url(value: str) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
        raise ValueError(f"must be an http(s) URL like 'https://matrix.example.com/', got {value!r}")
    return value


def _cron(value: str) -> str:
    fields = value.split() if isinstance(value, str) else []
    if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
        raise ValueError(f"must be a five-field cron expression like '0 2 * * *', got {value!r}")
    try:
        CronSchedule.parse(value)
    except ValueError as error:
        raise ValueError(f"must be a valid cron schedule ({error}), got {value!r}") from None
    return value


def _synapse_duration(value: str) -> str:
    if not _SYNAPSE_DURATION.match(value):
        raise ValueError(f"must be a Synapse duration like '30d', '12h', '4w' or '1y' (m, h, d, w, y), got {value!r}")
    return value


def _time_zone(value: str) -> str:
    time_zone(value)  # its ValueError names what is expected
    return value


def _platform(value: str) -> str:
    if not isinstance(value, str) or not _PLATFORM.match(value):
        raise ValueError(f"must be a platform like 'linux/amd64', 'linux/arm64' or 'linux/arm/v7', got {value!r}")
    return value


def registry_mirror_problem(registry: object, mirror: object) -> str | None:
    """What is wrong with one `registry host -> mirror prefix` entry, or None."""
    if not isinstance(registry, str) or not _REGISTRY_HOST.match(registry):
        return f"keys must be registry hosts like 'docker.io', 'quay.io' or 'ghcr.io', got {registry!r}"
    if registry in _DOCKER_HUB_ALIASES:
        return f"key {registry!r} is Docker Hub: write it as 'docker.io'"
    if not isinstance(mirror, str) or not _MIRROR.match(mirror):
        return (
            f"values must be a mirror's host and optional path like 'mirror.example.cn/dockerhub' "
            f"(no scheme, no trailing '/'), got {mirror!r} for {registry!r}"
        )
    return None


def split_reference(reference: str) -> tuple[str, str]:
    """The registry an image reference names and the rest of it.

    A first path part with a '.' or ':' (or `localhost`) names a registry; anything else is on
    Docker Hub, where a one-part name is an official image under `library/`.
    """
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry = DOCKER_HUB if first in _DOCKER_HUB_ALIASES else first
        if registry != DOCKER_HUB:
            return registry, rest
        reference = rest
    name = reference.split("@")[0].split(":")[0]
    return DOCKER_HUB, reference if "/" in name else f"library/{reference}"


DomainName = Annotated[str, AfterValidator(_domain)]
ImageRef = Annotated[str, AfterValidator(_image)]
MemoryMB = Annotated[int, BeforeValidator(_memory_mb)]
Localpart = Annotated[str, AfterValidator(_localpart)]
UploadSize = Annotated[str, AfterValidator(_upload_size)]
IpAddress = Annotated[str, AfterValidator(_ip_address)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
CronExpression = Annotated[str, AfterValidator(_cron)]
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
SynapseDuration = Annotated[str, AfterValidator(_synapse_duration)]
Platform = Annotated[str, AfterValidator(_platform)]
Port = Annotated[int, Field(ge=1, le=65535)]
Cpus = Annotated[float, Field(gt=0, le=64), AfterValidator(lambda value: _cpus(value))]


def docker_cpus(cpus: float) -> str:
    """`cpus` written as the Docker provider stores it after reading the container back.

    The provider turns Docker's NanoCpus into a decimal string with its own rule: nine decimals,
    but one decimal (rounded half away from zero) when that string holds exactly nine zeros. So
    1 becomes "1.0", 0.25 stays "0.25", 0.05 becomes "0.1" and 10 becomes "10.". A value written
    in any other form differs from the stored one, and `cpus` forces replacement: every
    `pulumi up` would replace the container.
    """
    exact = Decimal(round(Decimal(str(cpus)) * 1_000_000_000)) / 1_000_000_000
    nine_decimals = f"{exact:.9f}"
    if nine_decimals.count("0") == 9:
        return str(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
    return nine_decimals.rstrip("0")


def _cpus(value: float) -> float:
    stored = docker_cpus(value)
    if Decimal(stored) != Decimal(str(value)):
        raise ValueError(
            f"must be a CPU count the Docker provider stores unchanged: {value:g} is stored as {stored}, so "
            f"every `pulumi up` would replace the container; use {stored} or a value like {value + 0.1:.2f}"
        )
    return value


def image_tag(reference: str) -> str | None:
    """The tag of an image reference, or None when it has none (which means `latest`)."""
    match = _IMAGE.match(reference)
    return match.group("tag") if match else None
