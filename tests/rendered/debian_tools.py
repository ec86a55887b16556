"""Debian's monitoring tools for the rendered-configuration tests, unpacked without being installed.

`apt-get install prometheus` would start services and pull in extras; the tests only need the
binaries, so each package is downloaded (`apt-get download`) and unpacked (`dpkg-deb -x`) into
.cache/debian-tools/, once per machine.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".cache" / "debian-tools"

# binary -> the Debian package that ships it
PACKAGES = {
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
}


class ToolUnavailable(Exception):
    """The package could not be downloaded (no apt sources, no mirror): the message says why."""


def debian_tool(binary: str) -> Path:
    """The path of one tool, downloading and unpacking its package the first time."""
    package = PACKAGES[binary]
    unpacked = TOOLS / package / "usr" / "bin" / binary
    if unpacked.is_file():
        return unpacked
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise ToolUnavailable(f"{binary}: apt-get and dpkg-deb are needed to fetch Debian's {package}")
    TOOLS.mkdir(parents=True, exist_ok=True)
    with (TOOLS / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not unpacked.is_file():
            _download_and_unpack(package)
    if not unpacked.is_file():
        raise ToolUnavailable(f"{binary}: Debian's {package} does not ship usr/bin/{binary}")
    return unpacked


def _download_and_unpack(package: str) -> None:
    with tempfile.TemporaryDirectory(dir=TOOLS) as work:
        result = _download(package, work)
        if result.returncode != 0 and "Unable to locate package" in result.stderr:
            # A fresh machine has no package lists yet.
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, check=False)
            result = _download(package, work)
        if result.returncode != 0:
            raise ToolUnavailable(f"apt-get download {package} failed: {result.stderr.strip()[-300:]}")
        archive = next(Path(work).glob("*.deb"))
        target = TOOLS / f".{package}.partial"
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(archive), str(target)], check=True)
        shutil.rmtree(TOOLS / package, ignore_errors=True)
        target.rename(TOOLS / package)


def _download(package: str, directory: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", "download", "-qq", package], cwd=directory, capture_output=True, text=True, check=False)
