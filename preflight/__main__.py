"""python -m preflight STACK [--swap-mb]: check this machine for the stack; exit 1 on a blocking finding.

--swap-mb prints the swap (MB) the stack's containers need beside this machine's memory, and nothing else.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from config import ConfigError
from preflight import checks, host
from preflight.stack import containers, read_settings

ROOT = Path(__file__).resolve().parent.parent


def findings(stack: str) -> list[checks.Finding]:
    settings = read_settings(ROOT, stack)
    remote = settings.docker.host
    engine = host.engine(remote)
    found = checks.state(os.environ) + checks.engine(engine)
    if remote:
        found.append(
            checks.Finding(
                "host",
                "warning",
                f"docker.host is {remote}: memory, ports, disk, DNS and the clock are checks of the Docker host; "
                f"run `scripts/deploy.sh {stack} --check` there",
            )
        )
        return found
    found.append(checks.memory(stack, containers(settings), host.memory()))
    if settings.voicegrow.enabled and settings.voicegrow.asr.device == "cuda":
        found.append(checks.gpus(engine, host.gpu_hook_installed()))
    own = host.stack_ports(None, settings.project, settings.stack) if engine else set()
    found += checks.ports(settings.published_ports(), host.listeners(), own)
    if settings.tls == "acme" and settings.proxy.enabled:
        found += checks.dns(settings.proxied_hosts, host.resolve, host.local_addresses())
    if engine:
        volumes = host.stack_volumes_mb(None, settings.prefix)
        backups = (
            checks.backup_projection(settings.backup, settings.backup_parts(), volumes, datetime.now(timezone.utc))
            if settings.backup.enabled
            else None
        )
        needed = checks.disk_needed_mb(settings.monitoring.retention_size, backups)
        archives = round(volumes.get(checks.ARCHIVE_VOLUME, 0.0))
        found.append(checks.disk(engine.root_dir, host.free_mb(engine.root_dir), needed, archives, backups))
    found.append(checks.clock(host.clock_synchronized()))
    return found


def main(arguments: list[str]) -> int:
    if not arguments or arguments[0].startswith("-") or len(arguments) > 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    stack = arguments[0]
    try:
        if arguments[1:] == ["--swap-mb"]:
            print(checks.swap_mb(containers(read_settings(ROOT, stack)), host.memory()))
            return 0
        results = findings(stack)
    except ConfigError as error:
        print(f"preflight: BLOCKING stack {stack}: {error}", file=sys.stderr)
        return 1
    except FileNotFoundError as error:
        print(f"preflight: BLOCKING {error.filename} is missing: create it from Pulumi.dev.yaml", file=sys.stderr)
        return 1
    for finding in results:
        print(f"preflight: {finding.level.upper():8} {finding.check}: {finding.message}")
    blocking = [finding for finding in results if finding.level == "blocking"]
    if blocking:
        print(f"preflight: {len(blocking)} blocking finding(s): nothing was deployed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
