"""The `test` stack behind its ReverseProxy on a real Docker engine, reached as users reach it.

Synapse and VoiceGrow (the probe as its server, two replicas) run behind nginx with the stack's
self-signed TLS. Clients use the configured host names, resolved to this machine inside the test
process (see `hostnames.py`), send the matching Host and SNI, and trust only the CA certificate
the stack exports.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

from components.rendering.proxy import RATE_LIMITED_BODY
from tests.e2e.harness import AppliedStack
from tests.e2e.hostnames import resolve_to_loopback
from tests.e2e.matrix_client import converse
from tests.e2e.stacks import PROBE_IMAGE, assert_second_up_changes_nothing, deployed_stack, host_ports, local_overrides, record_figure
from tests.e2e.websocket_client import WebSocketError, echo

pytestmark = pytest.mark.e2e
PREFIX = "e2e-proxy"
PORT = host_ports(18300)
HTTP_PORT, HTTPS_PORT = PORT + 6, PORT + 7
DOMAIN = "e2e-proxy.test"
SERVER_NAME = DOMAIN
MATRIX_HOST = f"matrix.{DOMAIN}"
WS_HOST = f"ws.{DOMAIN}"
API_HOST = f"api.{DOMAIN}"
HOSTS = (MATRIX_HOST, SERVER_NAME, WS_HOST, API_HOST)
SERVERS = ("voicegrow-server-1", "voicegrow-server-2")
CONTAINERS = (
    "synapse-postgres",
    "synapse",
    "synapse-wellknown",
    "voicegrow-mysql",
    "voicegrow-redis",
    "voicegrow-minio",
    *SERVERS,
    "proxy",
    "monitoring-prometheus",
    "monitoring-alertmanager",
    "monitoring-node-exporter",
    "monitoring-blackbox-exporter",
    "healer",
)
OVERRIDES = local_overrides(
    PREFIX,
    PORT,
    {
        "synapse": {"server_name": SERVER_NAME, "public_host": MATRIX_HOST},
        "voicegrow": {"server_image": PROBE_IMAGE, "replicas": 2, "ws_host": WS_HOST, "api_host": API_HOST},
        # The restore drill covers the backups; this stack is about the proxy.
        "backup": {"enabled": False},
        # The default limit on logins, which the last test exhausts.
        "proxy": {"rate_limits": {"login": {"rate": "10r/m", "burst": 10}}},
    },
)
REQUESTS = 20


@dataclass(frozen=True)
class Deployed:
    stack: AppliedStack
    ca_file: str


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    with deployed_stack("test", OVERRIDES, "proxy", "test stack, TLS self-signed, 2 replicas") as applied:
        ca_file = tmp_path_factory.mktemp("proxy-ca") / "ca.pem"
        ca_file.write_text(applied.outputs["proxy_ca_certificate"])
        with resolve_to_loopback(DOMAIN):
            yield Deployed(applied, str(ca_file))


def _inspect(engine: docker.DockerClient, name: str) -> dict:
    return engine.api.inspect_container(f"{PREFIX}-{name}")


def _trusting(ca_file: str, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client context that trusts only the stack's CA (and speaks only `version`, when given)."""
    context = ssl.create_default_context(cafile=ca_file)
    if version is not None:
        if version < ssl.TLSVersion.TLSv1_2:
            # OpenSSL's default security level does not even offer TLS 1.0/1.1; the point is the server's answer.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = context.maximum_version = version
    return context


def _https(deployed: Deployed, host: str, path: str) -> Response:
    return _get(http.client.HTTPSConnection(host, HTTPS_PORT, context=_trusting(deployed.ca_file), timeout=30), host, path)


def _http(host: str, path: str) -> Response:
    return _get(http.client.HTTPConnection(host, HTTP_PORT, timeout=30), host, path)


def _get(connection: http.client.HTTPConnection, host: str, path: str) -> Response:
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def _handshake(deployed: Deployed, host: str, version: ssl.TLSVersion | None = None) -> str:
    """The TLS version negotiated with the proxy for `host`, verifying its certificate against the CA."""
    context = _trusting(deployed.ca_file, version)
    with socket.create_connection((host, HTTPS_PORT), timeout=15) as connection:
        with context.wrap_socket(connection, server_hostname=host) as tls:
            return str(tls.version())


def _instances(deployed: Deployed, count: int) -> list[tuple[str, float]]:
    """`count` API requests through the proxy, each on its own connection: which replica answered, and how fast."""
    answered = []
    for _ in range(count):
        began = time.monotonic()
        response = _https(deployed, API_HOST, "/api/v1/instance")
        assert response.status == 200, (response.status, response.body)
        answered.append((json.loads(response.body)["instance"], time.monotonic() - began))
    return answered


def test_every_container_is_healthy(deployed: Deployed, engine: docker.DockerClient) -> None:
    services = [name for name in deployed.stack.containers if not name.endswith("-files")]
    assert sorted(services) == sorted(f"{PREFIX}-{name}" for name in CONTAINERS)
    for name in CONTAINERS:
        assert _inspect(engine, name)["State"]["Health"]["Status"] == "healthy", name


def test_second_up_of_the_unchanged_test_program_changes_nothing(deployed: Deployed) -> None:
    assert_second_up_changes_nothing(deployed.stack, "proxy")


def test_proxy_listens_on_the_configured_loopback_ports(deployed: Deployed, engine: docker.DockerClient) -> None:
    assert _inspect(engine, "proxy")["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(HTTP_PORT)}],
        "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(HTTPS_PORT)}],
    }


def test_stack_exports_the_registration_token_and_the_https_urls(deployed: Deployed) -> None:
    outputs = deployed.stack.outputs
    assert outputs["synapse_registration_token"]
    assert "synapse_registration_token" in deployed.stack.secret_outputs
    assert outputs["proxy_urls"] == {host: f"https://{host}/" for host in (MATRIX_HOST, SERVER_NAME, WS_HOST, API_HOST)}


def test_every_host_presents_a_certificate_signed_by_the_exported_ca(deployed: Deployed) -> None:
    for host in HOSTS:
        assert _handshake(deployed, host) in ("TLSv1.2", "TLSv1.3"), host


def test_two_users_converse_over_https_through_the_proxy(deployed: Deployed) -> None:
    conversation = converse(
        f"https://{MATRIX_HOST}:{HTTPS_PORT}",
        registration_token=deployed.stack.outputs["synapse_registration_token"],
        ca_file=deployed.ca_file,
    )
    assert conversation.sender.endswith(f":{SERVER_NAME}") and conversation.reader.endswith(f":{SERVER_NAME}")


def test_wellknown_server_answers_json_with_cors(deployed: Deployed) -> None:
    response = _https(deployed, SERVER_NAME, "/.well-known/matrix/server")
    assert (response.status, json.loads(response.body)) == (200, {"m.server": f"{MATRIX_HOST}:443"})
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_wellknown_client_answers_json_with_cors(deployed: Deployed) -> None:
    response = _https(deployed, SERVER_NAME, "/.well-known/matrix/client")
    assert (response.status, json.loads(response.body)) == (200, {"m.homeserver": {"base_url": f"https://{MATRIX_HOST}"}})
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_plain_http_redirects_to_https(deployed: Deployed) -> None:
    for host in (MATRIX_HOST, API_HOST):
        response = _http(host, "/_matrix/client/versions?x=1")
        assert response.status == 301, host
        assert response.headers["Location"] == f"https://{host}/_matrix/client/versions?x=1"


def test_synapse_admin_api_is_refused_from_outside(deployed: Deployed) -> None:
    assert _https(deployed, MATRIX_HOST, "/_synapse/admin/v1/server_version").status == 403
    assert _https(deployed, SERVER_NAME, "/_synapse/admin/v1/users/@admin:e2e-proxy.test").status == 403


def test_responses_carry_hsts_nosniff_and_frame_denial(deployed: Deployed) -> None:
    for host, path in (
        (MATRIX_HOST, "/_matrix/client/versions"),
        (MATRIX_HOST, "/_synapse/admin/v1/server_version"),
        (API_HOST, "/api/v1/instance"),
    ):
        headers = _https(deployed, host, path).headers
        # Not includeSubDomains: the operator's other subdomains may not all serve HTTPS.
        assert headers["Strict-Transport-Security"] == "max-age=63072000", (host, path)
        assert headers["X-Content-Type-Options"] == "nosniff", (host, path)
        assert headers["X-Frame-Options"] == "DENY", (host, path)


def test_a_name_the_proxy_does_not_serve_gets_no_tls_handshake(deployed: Deployed) -> None:
    with socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=15) as connection:
        with pytest.raises(ssl.SSLError, match="(?i)unrecognized.name"):
            _trusting(deployed.ca_file).wrap_socket(connection, server_hostname="evil.example")


def test_a_name_the_proxy_does_not_serve_gets_no_answer_over_http(deployed: Deployed) -> None:
    with pytest.raises(http.client.RemoteDisconnected):
        _get(http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30), "evil.example", "/_matrix/client/versions")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused(deployed: Deployed) -> None:
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(deployed, MATRIX_HOST, ssl.TLSVersion.TLSv1_1)
    # The server's alert, not the client's inability to offer TLS 1.1.
    assert "PROTOCOL_VERSION" in str(refused.value).upper(), refused.value


@pytest.mark.parametrize(("version", "name"), [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_tls_1_2_and_1_3_are_accepted(deployed: Deployed, version: ssl.TLSVersion, name: str) -> None:
    assert _handshake(deployed, MATRIX_HOST, version) == name


def test_websocket_through_the_ws_host_is_upgraded_and_echoes(deployed: Deployed) -> None:
    text = f"hello through the proxy {uuid.uuid4().hex[:8]}"
    answer = echo(WS_HOST, HTTPS_PORT, text, host=WS_HOST, ssl_context=_trusting(deployed.ca_file), path="/ws")
    assert answer.status_line.startswith("HTTP/1.1 101")
    assert answer.headers["upgrade"].lower() == "websocket"
    assert answer.text == text


def test_websocket_upgrade_is_not_offered_on_the_api_host(deployed: Deployed) -> None:
    with pytest.raises(WebSocketError, match="no upgrade"):
        echo(API_HOST, HTTPS_PORT, "hello", host=API_HOST, ssl_context=_trusting(deployed.ca_file))


def test_api_requests_are_spread_over_both_replicas(deployed: Deployed, engine: docker.DockerClient) -> None:
    replicas = {_inspect(engine, name)["Config"]["Hostname"] for name in SERVERS}
    assert {instance for instance, _ in _instances(deployed, REQUESTS)} == replicas


# Last: it stops a replica for good (teardown removes it).
def test_api_keeps_answering_after_a_replica_is_stopped(deployed: Deployed, engine: docker.DockerClient) -> None:
    stopped, survivor = (_inspect(engine, name)["Config"]["Hostname"] for name in SERVERS)
    engine.containers.get(f"{PREFIX}-{SERVERS[0]}").stop(timeout=10)
    answered = _instances(deployed, REQUESTS)
    seconds = [elapsed for _, elapsed in answered]
    record_figure("e2e", "proxy.failover_20_requests", sum(seconds), "one replica stopped")
    record_figure("e2e", "proxy.failover_slowest_request", max(seconds), "one replica stopped")
    assert {instance for instance, _ in answered} == {survivor}, f"{stopped} was stopped"


def test_a_burst_of_logins_from_one_address_gets_429_from_the_proxy(deployed: Deployed) -> None:
    # Last in this file: the limit's bucket refills at 10 a minute, after this no login would pass.
    answers = []
    body = json.dumps({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "nobody"}, "password": "wrong"})
    for _ in range(14):
        connection = http.client.HTTPSConnection(MATRIX_HOST, HTTPS_PORT, context=_trusting(deployed.ca_file), timeout=30)
        try:
            connection.request("POST", "/_matrix/client/v3/login", body=body, headers={"Host": MATRIX_HOST, "Content-Type": "application/json"})
            response = connection.getresponse()
            answers.append((response.status, response.read().decode()))
        finally:
            connection.close()
    # The first 11 (1 + burst 10) reach Synapse, which refuses the wrong password (403) or, at its
    # own limit, answers 429 itself; the proxy answers every one after them, as Synapse would.
    from_synapse, from_proxy = answers[:11], answers[11:]
    assert all(status in (403, 429) and body != RATE_LIMITED_BODY for status, body in from_synapse), from_synapse
    assert from_proxy == [(429, RATE_LIMITED_BODY)] * 3, from_proxy
    assert json.loads(RATE_LIMITED_BODY)["errcode"] == "M_LIMIT_EXCEEDED"
    # The rest of the same host is not limited.
    assert _https(deployed, MATRIX_HOST, "/_matrix/client/versions").status == 200
