"""Prints the figures a test run recorded: image build times and end-to-end timings.

Each line of the figures file is `<kind> <name> <value> [note]`; `pass <label>` lines start a
group (the first image build and the cached rebuild).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path


def summarise(lines: list[str]) -> list[str]:
    """Human-readable figures, grouped by pass and kind."""
    group = "run"
    values: dict[tuple[str, str], list[tuple[str, float, str]]] = defaultdict(list)
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "pass":
            group = parts[1]
            continue
        if len(parts) < 3:
            continue
        kind, name, value = parts[0], parts[1], float(parts[2])
        values[(group, kind)].append((name, value, " ".join(parts[3:])))
    report = []
    for (group, kind), entries in values.items():
        unit = "MB" if kind == "size" else "s"
        total = sum(value for _, value, _ in entries)
        report.append(f"{kind} ({group}): total {total:.1f} {unit}")
        report.extend(f"  {name:<48} {value:>8.1f} {unit} {note}" for name, value, note in entries)
    return report


if __name__ == "__main__":
    path = Path(sys.argv[1])
    print("\n".join(summarise(path.read_text().splitlines() if path.exists() else [])) or "no figures recorded")
