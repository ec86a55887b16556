"""Pure functions that turn settings into configuration file text; nothing here declares resources."""

from __future__ import annotations

from typing import Any

import yaml


def dump_yaml(document: dict[str, Any]) -> str:
    """The one YAML writer: block style, keys in the order given."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)


# nginx runs on a read-only root filesystem: its temporary files go to the /tmp tmpfs, in the
# http context of every conf.d file the program renders (the image's own paths are read-only).
NGINX_TEMP_PATHS = "".join(
    f"{kind}_temp_path /tmp/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
)
