"""The engine API filter's nginx.conf, run by a real nginx in front of a stand-in engine on a Unix
socket that answers every request with the method and path it was sent: what passes, and what
the filter refuses before the engine sees it."""

from __future__ import annotations

import http.client
import http.server
import shutil
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.rendering import engine_api
from tests.rendered.processes import free_port, wait_for

pytestmark = [
    pytest.mark.rendered,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (the test script installs it)"),
]


class _Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    seen: list[str]


class _Answer(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")  # type: ignore[attr-defined]
        body = f"{self.command} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _answer

    def address_string(self) -> str:
        return "engine"

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def filtered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, list[str]]]:
    """The filter's port, and the requests the stand-in engine received."""
    directory = tmp_path_factory.mktemp("engine-api")
    socket_path = directory / "docker.sock"
    engine = _Engine(str(socket_path), _Answer)
    engine.seen = []
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    port = free_port()
    conf = (
        engine_api.render_engine_api_conf()
        .replace("/tmp/", f"{directory}/")
        .replace(engine_api.SOCKET, str(socket_path))
        .replace(f"listen {engine_api.PORT};", f"listen 127.0.0.1:{port};")
    )
    (directory / "nginx.conf").write_text(conf)
    checked = subprocess.run(["nginx", "-t", "-c", str(directory / "nginx.conf")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(["nginx", "-c", str(directory / "nginx.conf")], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _request(port, "GET", "/_ping")[0] == 200, 20, "the filter")
        yield port, engine.seen
    finally:
        process.terminate()
        process.wait(10)
        engine.shutdown()


def _request(port: int, method: str, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    except OSError:
        return 0, ""
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path",
    [
        "/_ping",
        "/v1.41/version",
        "/info",
        "/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22selfhosted.stack%3Dprod%22%5D%7D",
        "/containers/3f2a9c/json",
        "/v1.41/containers/selfhosted-prod-synapse/logs?follow=1&stdout=1&stderr=1&since=0",
    ],
)
def test_the_reads_alloy_and_cadvisor_make_reach_the_engine(filtered: tuple[int, list[str]], path: str) -> None:
    port, seen = filtered
    status, body = _request(port, "GET", path)
    assert (status, body) == (200, f"GET {path}")
    assert seen[-1] == f"GET {path}"


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1.41/containers/create"),
        ("POST", "/containers/3f2a9c/exec"),
        ("POST", "/containers/3f2a9c/kill"),
        ("DELETE", "/containers/3f2a9c"),
        ("POST", "/containers/json"),
        ("GET", "/containers/3f2a9c/archive?path=/run/secrets"),
        ("GET", "/containers/3f2a9c/export"),
        ("GET", "/images/json"),
        ("GET", "/volumes"),
        ("GET", "/secrets"),
        ("POST", "/build"),
        ("GET", "/containers/3f2a9c/json/../archive?path=/"),
        ("GET", "/containers/3f2a9c%2Farchive/json"),
    ],
)
def test_everything_else_is_refused_before_the_engine_sees_it(filtered: tuple[int, list[str]], method: str, path: str) -> None:
    port, seen = filtered
    before = len(seen)
    status, body = _request(port, method, path)
    assert status == 403 and "refused by the engine API filter" in body, (status, body)
    assert len(seen) == before


def test_the_engine_is_sent_the_path_the_filter_matched(filtered: tuple[int, list[str]]) -> None:
    port, seen = filtered
    status, _ = _request(port, "GET", "/containers/3f2a9c/logs/../json")
    assert status == 200 and seen[-1] == "GET /containers/3f2a9c/json"
