"""The proxy's nginx configuration for every stack and TLS mode, read by a real `nginx -t`.

Upstream host names (`synapse`, `server-1`, ...) resolve only inside the stack networks, so the
check points them at 127.0.0.1; certificate paths point at the certificate the container gets (the
operator's in 'files' mode, a test certificate where it is made at deploy time). Nothing else changes.
"""

from __future__ import annotations

import http.client
import http.server
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from components.changes import render_reload_when_loadable
from components.rendering.proxy import RATE_LIMITED_BODY
from tests.certificates import operator_tls_secrets, proxied_hosts
from tests.program import STACKS, run_program
from tests.rendered.processes import free_port, wait_for
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


def _answering_upstream() -> http.server.ThreadingHTTPServer:
    """A stand-in for Synapse that answers every request 200."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = _answer  # noqa: N815 - the names http.server calls

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _status_and_body(port: int, host: str, method: str, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body="{}" if method == "POST" else None, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def _answers(port: int, host: str) -> bool:
    try:
        return _status_and_body(port, host, "GET", "/_matrix/client/versions")[0] == 200
    except ConnectionRefusedError:
        return False


def test_nginx_limits_logins_per_address_and_answers_as_synapse_does(tmp_path: Path) -> None:
    files = _proxy_files("dev", "off")
    upstream, listen = _answering_upstream(), free_port()
    conf = files["/etc/nginx/conf.d/default.conf"]
    host = re.search(r"server_name ([a-z0-9.-]+)[^;]*;\n    limit_req ", conf).group(1)
    conf = re.sub(r"(\n    server )[a-z0-9-]+:\d+", rf"\g<1>127.0.0.1:{upstream.server_address[1]}", conf)
    conf = re.sub(r"listen 80( default_server)?;", rf"listen 127.0.0.1:{listen}\1;", conf)
    (tmp_path / "default.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\ndaemon off;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/default.conf;\n}}\n"
    )
    nginx = subprocess.Popen(["nginx", "-c", str(tmp_path / "nginx.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _answers(listen, host), 10, f"nginx answering ({nginx.stderr})")
        logins = [_status_and_body(listen, host, "POST", "/_matrix/client/v3/login") for _ in range(13)]
        # The default: 10 a minute with a burst of 10, so 1 + 10 pass at once.
        assert [status for status, _ in logins] == [200] * 11 + [429] * 2
        assert logins[-1][1] == RATE_LIMITED_BODY
        # Other endpoints of the host, and the limit's endpoints under another path, are not counted.
        assert {_status_and_body(listen, host, "GET", "/_matrix/client/v3/sync")[0] for _ in range(20)} == {200}
        assert _status_and_body(listen, host, "POST", "/_matrix/client/v3/register")[0] == 200
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        upstream.shutdown()
