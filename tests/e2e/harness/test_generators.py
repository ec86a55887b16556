"""Random values and TLS material behave like the providers'; no engine needed."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from cryptography.x509.oid import ExtendedKeyUsageOID

from .generators import (
    DEFAULT_SPECIAL,
    LOWER,
    NUMERIC,
    UPPER,
    cert_request,
    locally_signed_cert,
    private_key,
    random_bytes,
    random_id,
    random_integer,
    random_string,
    random_uuid,
    self_signed_cert,
)
from .values import UnsupportedInput, wrap_secret


def test_password_has_the_requested_length() -> None:
    assert len(random_string({"length": 32.0})["result"]) == 32


def test_password_without_special_uses_only_letters_and_digits() -> None:
    for _ in range(50):
        assert set(random_string({"length": 40.0, "special": False})["result"]) <= set(UPPER + LOWER + NUMERIC)


def test_override_special_replaces_the_special_set() -> None:
    allowed = set(UPPER + LOWER + NUMERIC + "-_")
    for _ in range(50):
        assert set(random_string({"length": 40.0, "overrideSpecial": "-_"})["result"]) <= allowed


def test_default_special_set_is_the_providers() -> None:
    result = random_string({"length": 64.0, "upper": False, "lower": False, "numeric": False})["result"]
    assert set(result) <= set(DEFAULT_SPECIAL)


def test_minimums_are_honoured() -> None:
    for _ in range(50):
        result = random_string({"length": 8.0, "minUpper": 2.0, "minNumeric": 3.0, "special": False})["result"]
        assert sum(c in UPPER for c in result) >= 2 and sum(c in NUMERIC for c in result) >= 3


def test_minimums_beyond_length_are_rejected() -> None:
    with pytest.raises(UnsupportedInput, match="length"):
        random_string({"length": 2.0, "minUpper": 3.0})


def test_empty_character_set_is_rejected() -> None:
    with pytest.raises(UnsupportedInput, match="empty"):
        random_string({"length": 8.0, "upper": False, "lower": False, "numeric": False, "special": False})


def test_keepers_are_accepted() -> None:
    assert len(random_string({"length": 4.0, "keepers": {"rotate": "1"}})["result"]) == 4


def test_unknown_password_input_is_rejected() -> None:
    with pytest.raises(UnsupportedInput, match="bcryptCost"):
        random_string({"length": 4.0, "bcryptCost": 10.0})


def test_random_bytes_encodings_agree() -> None:
    outputs = random_bytes({"length": 16.0})
    assert base64.b64decode(outputs["base64"]).hex() == outputs["hex"] and len(outputs["hex"]) == 32


def test_random_id_prefix_and_encodings() -> None:
    outputs = random_id({"byteLength": 8.0, "prefix": "srv-"})
    raw = bytes.fromhex(outputs["hex"].removeprefix("srv-"))
    assert outputs["dec"] == "srv-" + str(int.from_bytes(raw, "big"))
    assert outputs["b64Std"] == "srv-" + base64.b64encode(raw).decode()


def test_random_uuid_is_a_uuid() -> None:
    assert len(random_uuid({})["result"]) == 36


def test_random_integer_is_within_bounds() -> None:
    assert all(3 <= random_integer({"min": 3.0, "max": 5.0})["result"] <= 5 for _ in range(50))


# --- tls ------------------------------------------------------------------------------------------


def test_rsa_key_is_pkcs1_with_requested_bits() -> None:
    outputs = private_key({"algorithm": "RSA", "rsaBits": 2048.0})
    assert outputs["privateKeyPem"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    public = load_pem_public_key(outputs["publicKeyPem"].encode())
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048


def test_ecdsa_key_uses_the_requested_curve() -> None:
    outputs = private_key({"algorithm": "ECDSA", "ecdsaCurve": "P256"})
    key = load_pem_private_key(outputs["privateKeyPem"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert outputs["publicKeyOpenssh"].startswith("ecdsa-sha2-nistp256 ")


def ca() -> tuple[str, str]:
    key = private_key({"algorithm": "ECDSA", "ecdsaCurve": "P256"})["privateKeyPem"]
    cert = self_signed_cert(
        {
            "privateKeyPem": wrap_secret(key),
            "subject": {"commonName": "e2e CA", "organization": "e2e"},
            "validityPeriodHours": 24.0,
            "isCaCertificate": True,
            "setSubjectKeyId": True,
            "allowedUses": ["cert_signing", "crl_signing"],
        }
    )["certPem"]
    return key, cert


def test_self_signed_ca_has_basic_constraints_and_key_usage() -> None:
    cert = x509.load_pem_x509_certificate(ca()[1].encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature


def test_self_signed_cert_subject_and_validity() -> None:
    key = private_key({"algorithm": "RSA"})["privateKeyPem"]
    outputs = self_signed_cert(
        {"privateKeyPem": key, "subject": {"commonName": "example.org"}, "validityPeriodHours": 2.0}
    )
    cert = x509.load_pem_x509_certificate(outputs["certPem"].encode())
    assert cert.subject.rfc4514_string() == "CN=example.org"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() == 7200


def test_locally_signed_server_cert_carries_the_request_names() -> None:
    ca_key, ca_cert = ca()
    server_key = private_key({"algorithm": "ECDSA", "ecdsaCurve": "P256"})["privateKeyPem"]
    request = cert_request(
        {
            "privateKeyPem": server_key,
            "subject": {"commonName": "matrix.e2e.test"},
            "dnsNames": ["matrix.e2e.test"],
            "ipAddresses": ["127.0.0.1"],
        }
    )["certRequestPem"]
    outputs = locally_signed_cert(
        {
            "certRequestPem": request,
            "caPrivateKeyPem": ca_key,
            "caCertPem": ca_cert,
            "validityPeriodHours": 24.0,
            "allowedUses": ["digital_signature", "key_encipherment", "server_auth"],
        }
    )
    cert = x509.load_pem_x509_certificate(outputs["certPem"].encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["matrix.e2e.test"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert cert.issuer == x509.load_pem_x509_certificate(ca_cert.encode()).subject


def test_locally_signed_cert_verifies_against_its_ca() -> None:
    ca_key, ca_cert_pem = ca()
    key = private_key({"algorithm": "ECDSA", "ecdsaCurve": "P256"})["privateKeyPem"]
    request = cert_request({"privateKeyPem": key, "subject": {"commonName": "leaf"}})["certRequestPem"]
    leaf = x509.load_pem_x509_certificate(
        locally_signed_cert(
            {"certRequestPem": request, "caPrivateKeyPem": ca_key, "caCertPem": ca_cert_pem, "validityPeriodHours": 1.0}
        )["certPem"].encode()
    )
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_cert_pem.encode()))
