"""Pure functions that turn settings into configuration file text; nothing here declares resources."""

from __future__ import annotations

from typing import Any

import yaml


def dump_yaml(document: dict[str, Any]) -> str:
    """The one YAML writer: block style, keys in the order given."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)

