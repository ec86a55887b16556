"""The runbook (docs/runbook.md): the shell blocks between its markers, in order, for the tests that run them.

The markers are HTML comments, so the translation (docs/zh-CN/runbook.md) keeps them around its
own runbook, whatever its headings and prose say.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.program import ROOT

START, END = "<!-- runbook -->", "<!-- /runbook -->"
RUNBOOKS = ("docs/runbook.md", "docs/zh-CN/runbook.md")
"""The English runbook and its translation."""
ENGLISH = ROOT / RUNBOOKS[0]
_BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.S | re.M)
STACK_LINE = re.compile(r"^export STACK=\S+ PREFIX=\S+ SYNAPSE=\S+ SERVER_NAME=\S+ ADMIN=\S+$")


def present_runbooks() -> list[Path]:
    """The runbook pages of this checkout that have the markers."""
    return [path for path in (ROOT / name for name in RUNBOOKS) if path.is_file() and START in path.read_text()]


def runbook(path: Path) -> str:
    """The text between the runbook's markers; ValueError when the page has none."""
    text = path.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{path.name} has no {START} ... {END} section")
    return text[start + len(START) : end]


def command_blocks(path: Path) -> list[str]:
    """Each ```bash block of the runbook, in order."""
    return [block.strip() for block in _BLOCK.findall(runbook(path))]


def with_stack(blocks: list[str], values: dict[str, str]) -> list[str]:
    """The blocks with the first one, the line naming the stack, set to `values` (STACK, PREFIX, ...)."""
    if not STACK_LINE.match(blocks[0]):
        raise ValueError(f"the runbook must start by naming the stack, like 'export STACK=prod PREFIX=...', not {blocks[0]!r}")
    return ["export " + " ".join(f"{key}={value}" for key, value in values.items()), *blocks[1:]]
