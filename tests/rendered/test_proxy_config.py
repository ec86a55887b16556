"""The proxy's nginx configuration for every stack and TLS mode, read by a real `nginx -t`.

Upstream host names (`synapse`, `server-1`, ...) resolve only inside the stack networks, so the
check points them at 127.0.0.1; certificate paths point at the certificate the container gets (the
operator's in 'files' mode, a test certificate where it is made at deploy time). Nothing else changes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from components.changes import render_reload_when_loadable
from tests.certificates import operator_tls_secrets, proxied_hosts
from tests.program import STACKS, run_program
from tests.unit.mocks import RecordingMocks

pytestmark = [
    pytest.mark.rendered,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (the test script installs it)"),
]
TLS_MODES = ("off", "self-signed", "files", "acme")


ALLOWLIST = {"acme_email": "ops@example.com", "admin_allowlist": ["10.0.0.0/8"]}
# No allowlist (the admin API refused to everyone) and the optional federation listener.
DEFAULTS_AND_FEDERATION = {"acme_email": "ops@example.com", "federation_port": 8448}


def _proxy_files(stack: str, tls: str, proxy: dict[str, object] = ALLOWLIST) -> dict[str, str]:
    """The files the proxy container gets, by path, with a real test certificate in every mode."""
    mocks = RecordingMocks()
    secrets = operator_tls_secrets(proxied_hosts(stack)) if tls == "files" else None
    overrides = {"tls": tls, "proxy": proxy}
    run_program(mocks, stack, preview=False, overrides=overrides, secrets=secrets)
    files = mocks.files("proxy")
    if tls != "files":  # the mocks' stand-ins for certificates made at deploy time are not PEM
        certificate = operator_tls_secrets(["test.example.com"])
        files["/etc/nginx/tls/fullchain.pem"] = certificate["tls_certificate"]
        files["/etc/nginx/tls/privkey.pem"] = certificate["tls_private_key"]
    return files


def _nginx_test(files: dict[str, str], directory: Path) -> subprocess.CompletedProcess[str]:
    for name in ("fullchain.pem", "privkey.pem"):
        (directory / name).write_text(files[f"/etc/nginx/tls/{name}"])
    conf = files["/etc/nginx/conf.d/default.conf"]
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
    result = _nginx_test(_proxy_files(stack, tls), tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("tls", [mode for mode in TLS_MODES if mode != "off"])  # federation is HTTPS only
def test_nginx_accepts_the_admin_refusal_and_the_federation_listener(tls: str, tmp_path: Path) -> None:
    files = _proxy_files("prod", tls, DEFAULTS_AND_FEDERATION)
    conf = files["/etc/nginx/conf.d/default.conf"]
    assert "8448" in conf and "return 403" in conf  # the variant under test is rendered
    result = _nginx_test(files, tmp_path)
    assert result.returncode == 0, result.stderr


def test_nginx_rejects_a_broken_proxy_config(tmp_path: Path) -> None:
    files = _proxy_files("prod", "self-signed")
    conf = files["/etc/nginx/conf.d/default.conf"]
    files["/etc/nginx/conf.d/default.conf"] = conf.replace("proxy_read_timeout 86400;", "proxy_read_timeout forever;")
    assert _nginx_test(files, tmp_path).returncode != 0


# A stand-in nginx: `-t` fails (as nginx does for an upstream that does not resolve) until the
# file `resolves` exists; `-s reload` records that it ran.
FAKE_NGINX = """#!/bin/sh
here="$(dirname "$0")"
case "$1" in
  -t) [ -e "$here/resolves" ] && exit 0
      echo 'nginx: [emerg] host not found in upstream "synapse-sync1:8008" in /etc/nginx/conf.d/matrix.conf:12' >&2
      exit 1 ;;
  -s) echo reloaded >>"$here/reloads" ;;
esac
"""


def _reload_script(directory: Path, deadline_seconds: int) -> subprocess.Popen[str]:
    nginx = directory / "nginx"
    nginx.write_text(FAKE_NGINX)
    nginx.chmod(0o755)
    return subprocess.Popen(
        ["/bin/sh", "-c", render_reload_when_loadable(deadline_seconds)],
        env={"PATH": f"{directory}:/usr/bin:/bin"},
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_replica_reload_waits_until_nginx_accepts_its_configuration(tmp_path: Path) -> None:
    reload = _reload_script(tmp_path, deadline_seconds=60)
    time.sleep(2.5)
    assert reload.poll() is None and not (tmp_path / "reloads").exists()
    (tmp_path / "resolves").touch()
    assert reload.wait(timeout=10) == 0
    assert (tmp_path / "reloads").read_text() == "reloaded\n"


def test_the_replica_reload_fails_at_its_deadline_naming_the_upstream(tmp_path: Path) -> None:
    reload = _reload_script(tmp_path, deadline_seconds=2)
    _, stderr = reload.communicate(timeout=20)
    assert reload.returncode == 1
    assert "did not accept its configuration within 2 s" in stderr and '"synapse-sync1:8008"' in stderr
    assert not (tmp_path / "reloads").exists()
