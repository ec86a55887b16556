"""An operator's certificate and key for the proxy's 'files' TLS mode, made for the tests."""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.program import run_program
from tests.unit.mocks import RecordingMocks


def operator_tls_secrets(hosts: list[str], days: int = 30, addresses: tuple[str, ...] = ()) -> dict[str, str]:
    """The secrets `tls_certificate` and `tls_private_key`: a self-signed certificate naming `hosts`
    (and the IP `addresses`, for a server reached by address).

    A negative `days` gives a certificate that has already expired.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = sorted([now - datetime.timedelta(days=1), now + datetime.timedelta(days=days)])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host) for host in hosts] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {
        "tls_certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "tls_private_key": key_pem.decode(),
    }


def proxied_hosts(stack: str) -> list[str]:
    """The hosts the stack's proxy serves: the names its self-signed certificate carries."""
    mocks = RecordingMocks()
    run_program(mocks, stack, preview=False, overrides={"tls": "self-signed"})
    return list(mocks.named("proxy-csr").value("dnsNames"))
