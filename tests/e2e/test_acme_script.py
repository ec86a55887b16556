"""The proxy's ACME client script run for real in a container, with a stand-in `certbot`.

Let's Encrypt cannot be reached here, so `certbot` is a small script that records its arguments
and answers with a certificate the test made. Everything else is the script as the acme
container runs it: the temporary certificate nginx starts with, the request, the swap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from cryptography import x509

from tests.certificates import operator_tls_secrets
from tests.e2e.stacks import LOCAL_IMAGES, ROOT

pytestmark = pytest.mark.e2e
# Any image with sh and Python's cryptography runs the script as the certbot image does.
IMAGE = LOCAL_IMAGES["synapse"]
DOMAINS = ["matrix.example.com", "example.com"]
SERVER = "https://acme-staging-v02.api.letsencrypt.org/directory"
STAND_IN_CERTBOT = """#!/bin/sh
echo "$@" > /stub/args
until [ -e /stub/answer ]; do sleep 0.2; done
mkdir -p /etc/letsencrypt/live/proxy
cp /stub/fullchain.pem /stub/privkey.pem /etc/letsencrypt/live/proxy/
"""


def _wait(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.2)


@pytest.fixture
def acme(engine: docker.DockerClient, tmp_path: Path) -> Iterator[tuple[docker.models.containers.Container, Path, Path]]:
    try:
        engine.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{IMAGE} is not built (tests/e2e/images/build.sh synapse)")
    tls, stub = tmp_path / "tls", tmp_path / "stub"
    tls.mkdir()
    stub.mkdir()
    (stub / "certbot").write_text(STAND_IN_CERTBOT)
    (stub / "certbot").chmod(0o755)
    issued = operator_tls_secrets(DOMAINS)
    (stub / "fullchain.pem").write_text(issued["tls_certificate"])
    (stub / "privkey.pem").write_text(issued["tls_private_key"])
    container = engine.containers.run(
        IMAGE,
        entrypoint=["/bin/sh", "/opt/acme/acme.sh"],
        environment={"ACME_DOMAINS": " ".join(DOMAINS), "ACME_EMAIL": "ops@example.com", "ACME_SERVER": SERVER, "RENEW_HOURS": "12"},
        volumes={
            str(ROOT / "components" / "scripts" / "acme.sh"): {"bind": "/opt/acme/acme.sh", "mode": "ro"},
            str(stub / "certbot"): {"bind": "/usr/local/bin/certbot", "mode": "ro"},
            str(stub): {"bind": "/stub", "mode": "rw"},
            str(tls): {"bind": "/tls", "mode": "rw"},
        },
        detach=True,
    )
    try:
        yield container, tls, stub
    finally:
        container.remove(force=True, v=True)


def _names(pem: bytes) -> list[str]:
    certificate = x509.load_pem_x509_certificate(pem)
    return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def test_nginx_gets_a_temporary_certificate_for_every_host_before_lets_encrypt_answers(acme) -> None:
    _, tls, stub = acme
    _wait(lambda: (stub / "args").exists(), "the certificate request")
    assert _names((tls / "fullchain.pem").read_bytes()) == DOMAINS
    assert (tls / "privkey.pem").stat().st_size > 0


def test_the_request_uses_the_webroot_the_proxy_serves_the_server_and_every_host(acme) -> None:
    _, _, stub = acme
    _wait(lambda: (stub / "args").exists(), "the certificate request")
    arguments = (stub / "args").read_text().split()
    assert arguments[:5] == ["certonly", "--webroot", "-w", "/var/www/acme", "--cert-name"]
    assert arguments[arguments.index("--server") + 1] == SERVER
    assert arguments[arguments.index("--email") + 1] == "ops@example.com"
    assert [arguments[i + 1] for i, flag in enumerate(arguments) if flag == "-d"] == DOMAINS


def test_the_issued_certificate_replaces_the_temporary_one(acme) -> None:
    container, tls, stub = acme
    _wait(lambda: (stub / "args").exists(), "the certificate request")
    (stub / "answer").touch()
    _wait(lambda: b"new certificate installed" in container.logs(), "the swap")
    assert (tls / "fullchain.pem").read_bytes() == (stub / "fullchain.pem").read_bytes()
    assert (tls / "privkey.pem").read_bytes() == (stub / "privkey.pem").read_bytes()
    logs = container.logs().decode()
    assert logs.index("temporary self-signed certificate in place") < logs.index("new certificate installed")
    _wait(lambda: not list(tls.glob("*.new")), "the staging copies to be removed", timeout=5)
