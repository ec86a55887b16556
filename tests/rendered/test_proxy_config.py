"""The proxy's nginx configuration for every stack and TLS mode, read by a real `nginx -t`.

Upstream host names (`synapse`, `server-1`, ...) resolve only inside the stack networks, so the
check points them at 127.0.0.1; certificate paths point at a test certificate. Nothing else changes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.program import STACKS, run_program
from tests.unit.mocks import RecordingMocks

pytestmark = [
    pytest.mark.rendered,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (the test script installs it)"),
]
TLS_MODES = ("off", "self-signed", "files", "acme")


def _proxy_conf(stack: str, tls: str) -> str:
    mocks = RecordingMocks()
    secrets = {"tls_certificate": "CERT", "tls_private_key": "KEY"} if tls == "files" else None
    overrides = {"tls": tls, "proxy": {"acme_email": "ops@example.com", "admin_allowlist": ["10.0.0.0/8"]}}
    run_program(mocks, stack, preview=False, overrides=overrides, secrets=secrets)
    uploads = mocks.named("proxy", "docker:index/container:Container").value("uploads")
    return next(u["content"] for u in uploads if u["file"] == "/etc/nginx/conf.d/default.conf")


def _nginx_test(conf: str, directory: Path) -> subprocess.CompletedProcess[str]:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=test", "-keyout", str(directory / "privkey.pem"), "-out", str(directory / "fullchain.pem")],
        check=True,
        capture_output=True,
    )
    conf = re.sub(r"(\n    server )[a-z0-9-]+:(\d+)", r"\g<1>127.0.0.1:\2", conf)
    conf = conf.replace("/etc/nginx/tls/", f"{directory}/")
    (directory / "default.conf").write_text(conf)
    (directory / "nginx.conf").write_text(
        f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {directory}/default.conf;\n}}\n"
    )
    return subprocess.run(["nginx", "-t", "-c", str(directory / "nginx.conf")], capture_output=True, text=True)


@pytest.mark.parametrize("tls", TLS_MODES)
@pytest.mark.parametrize("stack", STACKS)
def test_nginx_accepts_the_proxy_config(stack: str, tls: str, tmp_path: Path) -> None:
    result = _nginx_test(_proxy_conf(stack, tls), tmp_path)
    assert result.returncode == 0, result.stderr


def test_nginx_rejects_a_broken_proxy_config(tmp_path: Path) -> None:
    conf = _proxy_conf("prod", "self-signed").replace("proxy_read_timeout 86400;", "proxy_read_timeout forever;")
    assert _nginx_test(conf, tmp_path).returncode != 0
