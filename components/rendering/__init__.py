"""Pure functions that turn settings into configuration file text; nothing here declares resources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import yaml


def dump_yaml(document: dict[str, Any]) -> str:
    """The one YAML writer: block style, keys in the order given."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)


# nginx runs on a read-only root filesystem: its temporary files go to the /tmp tmpfs, in the
# http context of every conf.d file the program renders (the image's own paths are read-only).
NGINX_TEMP_PATHS = "".join(
    f"{kind}_temp_path /tmp/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
)


TEMPLATES = Path(__file__).with_name("templates")
"""The long text formats, as Jinja2 templates (`<file>.j2`)."""


def render_template(name: str, filters: dict[str, Callable[[Any], str]] | None = None, **values: Any) -> str:
    """The template `name` of TEMPLATES with `values`: a value it names but is not given is an
    error, lines holding only a block tag leave nothing behind, and nothing is escaped (these
    are configuration files, not HTML)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters.update(filters or {})
    return environment.get_template(name).render(**values)
