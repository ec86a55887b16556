"""TLS mode `acme` end to end: a real certbot gets a certificate from a real ACME server through
the proxy's HTTP-01 webroot, and nginx serves it after its reload.

Let's Encrypt is out of reach here, so Pebble (Let's Encrypt's ACME test server, Debian's
package) plays the CA, through the program's own `proxy.acme_directory` and
`proxy.acme_directory_ca` settings. Pebble runs on the host's network and resolves the stack's
host names to 127.0.0.1, where the proxy publishes its HTTP port: the challenge answers come
from the proxy exactly as a CA on the internet would fetch them.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from datetime import datetime, timezone
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.certificates import operator_tls_secrets
from tests.e2e.harness import AppliedStack
from tests.e2e.hostnames import resolve_to_loopback
from tests.e2e.stacks import assert_second_up_changes_nothing, deployed_stack, host_address_for_containers, host_ports, local_overrides, record_figure
from tests.rendered.processes import wait_for

pytestmark = pytest.mark.e2e
PREFIX = "e2e-acme"
PORT = host_ports(18400)
HTTP_PORT, HTTPS_PORT = PORT + 6, PORT + 7
DOMAIN = "e2e-acme.test"
MATRIX_HOST = f"matrix.{DOMAIN}"
HOSTS = [MATRIX_HOST, DOMAIN]
PEBBLE_IMAGE = "e2e.local/pebble:2.4"
CERTBOT_IMAGE = "e2e.local/certbot:stand-in"
PEBBLE_PORT, PEBBLE_MANAGEMENT_PORT = PORT + 8, PORT + 9
# nginx picks up a new certificate at its next check (every 10 s).
ISSUED_AND_SERVED_WITHIN = 180


def _peer_certificate(host: str) -> x509.Certificate:
    """The certificate the proxy presents for `host` (not verified: it may still be the temporary one)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=10) as connection:
        with context.wrap_socket(connection, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _issuer(certificate: x509.Certificate) -> str:
    return certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


@pytest.fixture(scope="module")
def pebble(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Pebble listening on the host; yields its directory URL and the PEM its HTTPS is verified with."""
    for image in (PEBBLE_IMAGE, CERTBOT_IMAGE):
        try:
            engine.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.skip(f"{image} is not built (tests/e2e/images/build.sh pebble certbot)")
    gateway = host_address_for_containers(engine)
    directory = tmp_path_factory.mktemp("pebble")
    server = operator_tls_secrets(["pebble"], addresses=(gateway,))
    (directory / "cert.pem").write_text(server["tls_certificate"])
    (directory / "key.pem").write_text(server["tls_private_key"])
    config = {
        "listenAddress": f"0.0.0.0:{PEBBLE_PORT}",
        "managementListenAddress": f"0.0.0.0:{PEBBLE_MANAGEMENT_PORT}",
        "certificate": "/etc/pebble/cert.pem",
        "privateKey": "/etc/pebble/key.pem",
        "httpPort": HTTP_PORT,  # where HTTP-01 answers are fetched: the proxy's published port
        "tlsPort": HTTPS_PORT,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
    (directory / "config.json").write_text(json.dumps({"pebble": config}))
    container = engine.containers.run(
        PEBBLE_IMAGE,
        network_mode="host",
        extra_hosts={host: "127.0.0.1" for host in HOSTS},
        volumes={str(directory): {"bind": "/etc/pebble", "mode": "ro"}},
        name=f"{PREFIX}-pebble",
        detach=True,
    )
    try:
        wait_for(lambda: b"ACME directory available" in container.logs(), 30, "Pebble's start")
        yield f"https://{gateway}:{PEBBLE_PORT}/dir", server["tls_certificate"]
    finally:
        container.remove(force=True, v=True)


@pytest.fixture(scope="module")
def stack(pebble: tuple[str, str]) -> Iterator[AppliedStack]:
    directory_url, directory_ca = pebble
    overrides = local_overrides(
        PREFIX,
        PORT,
        {
            "tls": "acme",
            "images": {"acme": CERTBOT_IMAGE},
            "synapse": {"server_name": DOMAIN, "public_host": MATRIX_HOST},
            "voicegrow": {"enabled": False},
            "backup": {"enabled": False},
            "proxy": {"acme_email": "ops@example.com", "acme_directory": directory_url, "acme_directory_ca": directory_ca},
        },
    )
    with deployed_stack("test", overrides, "acme", "TLS acme against Pebble") as applied:
        yield applied


@pytest.fixture(scope="module")
def issued(stack: AppliedStack, engine: docker.DockerClient) -> x509.Certificate:
    """The certificate the proxy serves once the CA's has replaced the temporary one."""
    started = time.monotonic()
    acme = engine.containers.get(f"{PREFIX}-proxy-acme")
    # Docker's RFC 3339 time has up to nine fraction digits; Python reads six.
    started_at = engine.api.inspect_container(f"{PREFIX}-proxy")["State"]["StartedAt"]
    proxy_started = datetime.fromisoformat(re.sub(r"(\.\d{1,6})\d*", r"\1", started_at).replace("Z", "+00:00"))
    while True:
        certificate = _peer_certificate(MATRIX_HOST)
        if "Pebble" in _issuer(certificate):
            served_after = (datetime.now(timezone.utc) - proxy_started).total_seconds()
            record_figure("e2e", "acme.proxy_started_to_issued_certificate_served", served_after)
            return certificate
        logs = acme.logs().decode(errors="replace")
        # A failed request is retried only after five minutes: report it now.
        failed = "certificate request failed" in logs
        if failed or time.monotonic() - started > ISSUED_AND_SERVED_WITHIN:
            pebble = engine.containers.get(f"{PREFIX}-pebble").logs(tail=30).decode(errors="replace")
            raise AssertionError(
                f"the proxy serves a certificate from {_issuer(certificate)!r} after {time.monotonic() - started:.0f} s\n"
                f"acme client:\n{logs[-3000:]}\nPebble:\n{pebble}"
            )
        time.sleep(2)


def test_the_proxy_serves_a_certificate_for_every_host_once_deployed(stack: AppliedStack) -> None:
    # The temporary one or already the CA's: nginx never waits for the CA to start.
    certificate = _peer_certificate(DOMAIN)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == sorted(HOSTS)


def test_the_ca_issues_a_certificate_for_every_host_through_the_webroot(issued: x509.Certificate) -> None:
    names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == sorted(HOSTS)


def test_clients_trusting_the_ca_reach_synapse_over_https(issued: x509.Certificate, pebble: tuple[str, str], tmp_path: Path) -> None:
    directory_url, directory_ca = pebble
    management = directory_url.replace(f":{PEBBLE_PORT}/dir", f":{PEBBLE_MANAGEMENT_PORT}/roots/0")
    # The root of the CA's chain, as a client's trust store would hold Let's Encrypt's.
    (tmp_path / "directory.pem").write_text(directory_ca)
    with urllib.request.urlopen(management, context=ssl.create_default_context(cafile=str(tmp_path / "directory.pem"))) as answer:
        root = answer.read().decode()
    context = ssl.create_default_context(cadata=root)
    with resolve_to_loopback(DOMAIN):
        request = urllib.request.Request(f"https://{MATRIX_HOST}:{HTTPS_PORT}/_matrix/client/versions")
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            assert response.status == 200
            assert "versions" in json.loads(response.read())


def test_plain_http_still_redirects_to_https(stack: AppliedStack) -> None:
    connection = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10)
    with connection:
        connection.sendall(f"GET /_matrix/client/versions HTTP/1.1\r\nHost: {MATRIX_HOST}\r\nConnection: close\r\n\r\n".encode())
        head = connection.recv(4096).decode()
    assert head.startswith("HTTP/1.1 301") and f"Location: https://{MATRIX_HOST}/_matrix/client/versions" in head


def test_second_up_after_the_certificate_is_issued_changes_nothing(stack: AppliedStack, issued: x509.Certificate) -> None:
    assert_second_up_changes_nothing(stack, "acme")
