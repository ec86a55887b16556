"""The host firewall's script, read by Debian's /bin/sh (dash), the shell that runs it on the host.

Its effect on a real ufw and iptables is checked end to end (tests/e2e/test_firewall_e2e.py).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from components.rendering.firewall import allowed_ports, render_firewall_script
from config import resolve_settings
from tests.stack_config import ALERT_RECEIVERS, HOST_KEY

pytestmark = [pytest.mark.rendered, pytest.mark.skipif(shutil.which("dash") is None, reason="dash is not installed")]

CASES = {
    "prod": {},
    "federation-and-operator-rules": {
        "proxy": {"acme_email": "ops@example.com", "federation_port": 8448},
        "firewall": {"allow": [{"port": 51820, "protocol": "udp"}, {"port": 9000, "source": "203.0.113.0/24"}]},
    },
}


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_the_script_parses_in_dash(overrides: dict[str, Any]) -> None:
    raw = {
        "synapse": {"server_name": "example.com", "admin_username": "admin"},
        "proxy": {"acme_email": "ops@example.com"},
        "monitoring": ALERT_RECEIVERS,
        "docker": {"host": "ssh://deploy@vps.example.com:2222"},
        **overrides,
    }
    raw["firewall"] = {"host_key": HOST_KEY, **overrides.get("firewall", {})}
    script = render_firewall_script(allowed_ports(resolve_settings("selfhosted", "prod", raw)))
    result = subprocess.run(["dash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
