"""CPU and memory of containers while a load runs, as `docker stats` computes them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import docker


@dataclass(frozen=True)
class Sample:
    at: float
    """time.monotonic() when the sample arrived."""
    cpu_percent: float
    """Of one core, as `docker stats` shows it (a 0.6 CPU limit caps it at 60)."""
    memory_mb: float
    """Usage without the inactive page cache, as `docker stats` shows it."""


@dataclass(frozen=True)
class Usage:
    cpu_mean: float
    cpu_peak: float
    memory_peak_mb: float
    samples: int


def cpu_percent(stats: dict[str, Any]) -> float | None:
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    try:
        cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
        system_delta = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    except (KeyError, TypeError):
        return None
    if system_delta <= 0 or cpu_delta < 0:
        return None
    online = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or []) or 1
    return cpu_delta / system_delta * online * 100.0


def memory_mb(stats: dict[str, Any]) -> float | None:
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        return None
    details = memory.get("stats") or {}
    inactive = details.get("total_inactive_file", details.get("inactive_file", 0))
    if inactive < usage:
        usage -= inactive
    return usage / (1024 * 1024)


@dataclass
class StatsSampler:
    """Follows the engine's stats stream (one sample a second) of some containers in threads."""

    client: docker.DockerClient
    containers: dict[str, str]
    """role -> container id"""
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> StatsSampler:
        for role, container_id in self.containers.items():
            self.samples[role] = []
            thread = threading.Thread(target=self._follow, args=(role, container_id), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _follow(self, role: str, container_id: str) -> None:
        try:
            for stats in self.client.api.stats(container_id, stream=True, decode=True):
                if self._stop.is_set():
                    return
                cpu, memory = cpu_percent(stats), memory_mb(stats)
                if cpu is not None and memory is not None:
                    self.samples[role].append(Sample(time.monotonic(), cpu, memory))
        except Exception:  # noqa: BLE001 - the container went away; the samples so far stand
            return

    def stop(self) -> None:
        self._stop.set()

    def usage(self, role: str, start: float, end: float) -> Usage | None:
        """CPU mean and peak and memory peak of the samples taken between start and end (monotonic)."""
        window = [sample for sample in self.samples.get(role, []) if start <= sample.at <= end + 1.0]
        if not window:
            return None
        cpu = [sample.cpu_percent for sample in window]
        return Usage(
            cpu_mean=sum(cpu) / len(cpu),
            cpu_peak=max(cpu),
            memory_peak_mb=max(sample.memory_mb for sample in window),
            samples=len(window),
        )
