"""Real values for pulumi-random and pulumi-tls resources.

Each function takes the resource's wire inputs and returns its outputs under the providers'
output names, following terraform-provider-random and terraform-provider-tls (which those
Pulumi packages are generated from): character sets and minimums for passwords, PEM encodings
and certificate extensions for keys and certificates.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .values import Fields, UnsupportedInput

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
RANDOM_STRING = "random:index/randomString:RandomString"
RANDOM_BYTES = "random:index/randomBytes:RandomBytes"
RANDOM_ID = "random:index/randomId:RandomId"
RANDOM_UUID = "random:index/randomUuid:RandomUuid"
RANDOM_INTEGER = "random:index/randomInteger:RandomInteger"
TLS_PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
TLS_SELF_SIGNED_CERT = "tls:index/selfSignedCert:SelfSignedCert"
TLS_CERT_REQUEST = "tls:index/certRequest:CertRequest"
TLS_LOCALLY_SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert"

NUMERIC = "0123456789"
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DEFAULT_SPECIAL = "!@#$%&*()-_=+[]{}<>:?"

_rng = secrets.SystemRandom()

# --- random ---------------------------------------------------------------------------------------


def random_string(inputs: Mapping[str, Any], where: str = RANDOM_STRING) -> dict[str, Any]:
    """RandomString and RandomPassword: `result` honouring length, sets and minimums."""
    f = Fields(inputs, where)
    length = f.integer("length")
    if length is None or length < 1:
        raise f.error("length", "is required and must be at least 1")
    special_chars = f.string("overrideSpecial") or DEFAULT_SPECIAL
    numeric = f.boolean("numeric")
    number = f.boolean("number")  # deprecated alias of numeric
    use_numeric = numeric if numeric is not None else (number if number is not None else True)
    use = {
        UPPER: f.flag("upper", True),
        LOWER: f.flag("lower", True),
        NUMERIC: use_numeric,
        special_chars: f.flag("special", True),
    }
    minimums = {
        NUMERIC: f.integer("minNumeric", 0) or 0,
        LOWER: f.integer("minLower", 0) or 0,
        UPPER: f.integer("minUpper", 0) or 0,
        special_chars: f.integer("minSpecial", 0) or 0,
    }
    f.accept("keepers")
    f.finish()
    chars = "".join(charset for charset, enabled in use.items() if enabled)
    if not chars:
        raise UnsupportedInput(f"{where}: the character set specified is empty")
    if sum(minimums.values()) > length:
        raise f.error("length", f"{length} is less than the sum of the minimums ({sum(minimums.values())})")
    # As upstream: the minimums are drawn from their own sets even if that set is disabled.
    result = [_rng.choice(charset) for charset, count in minimums.items() for _ in range(count)]
    result += [_rng.choice(chars) for _ in range(length - len(result))]
    _rng.shuffle(result)
    return {"result": "".join(result)}


def random_bytes(inputs: Mapping[str, Any], where: str = RANDOM_BYTES) -> dict[str, Any]:
    f = Fields(inputs, where)
    length = f.integer("length")
    if length is None or length < 1:
        raise f.error("length", "is required and must be at least 1")
    f.accept("keepers")
    f.finish()
    data = secrets.token_bytes(length)
    return {"base64": base64.b64encode(data).decode(), "hex": data.hex()}


def random_id(inputs: Mapping[str, Any], where: str = RANDOM_ID) -> dict[str, Any]:
    f = Fields(inputs, where)
    length = f.integer("byteLength")
    if length is None or length < 1:
        raise f.error("byteLength", "is required and must be at least 1")
    prefix = f.string("prefix", "") or ""
    f.accept("keepers")
    f.finish()
    data = secrets.token_bytes(length)
    url = base64.urlsafe_b64encode(data).decode().rstrip("=")
    return {
        "b64Url": prefix + url,
        "b64Std": prefix + base64.b64encode(data).decode(),
        "hex": prefix + data.hex(),
        "dec": prefix + str(int.from_bytes(data, "big")),
    }


def random_uuid(inputs: Mapping[str, Any], where: str = RANDOM_UUID) -> dict[str, Any]:
    f = Fields(inputs, where)
    f.accept("keepers")
    f.finish()
    return {"result": str(uuid.uuid4())}


def random_integer(inputs: Mapping[str, Any], where: str = RANDOM_INTEGER) -> dict[str, Any]:
    f = Fields(inputs, where)
    low = f.integer("min")
    high = f.integer("max")
    if low is None or high is None or high < low:
        raise f.error("max", "min and max are required and max must not be less than min")
    f.accept("keepers", "seed")
    f.finish()
    return {"result": _rng.randint(low, high)}


# --- tls ------------------------------------------------------------------------------------------

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P224": ec.SECP224R1,
    "P256": ec.SECP256R1,
    "P384": ec.SECP384R1,
    "P521": ec.SECP521R1,
}

_KEY_USAGES = {
    "digital_signature": "digital_signature",
    "content_commitment": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
    "cert_signing": "key_cert_sign",
    "crl_signing": "crl_sign",
    "encipher_only": "encipher_only",
    "decipher_only": "decipher_only",
}

_EXTENDED_KEY_USAGES = {
    "any_extended": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
}


def _key_algorithm(key: Any) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ECDSA"
    return "ED25519"


def _signature_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {384: hashes.SHA384(), 521: hashes.SHA512()}.get(key.curve.key_size, hashes.SHA256())
    return hashes.SHA256()


def private_key(inputs: Mapping[str, Any], where: str = TLS_PRIVATE_KEY) -> dict[str, Any]:
    f = Fields(inputs, where)
    algorithm = f.required_string("algorithm")
    key: PrivateKey
    if algorithm == "RSA":
        key = rsa.generate_private_key(public_exponent=65537, key_size=f.integer("rsaBits", 2048) or 2048)
        pem_format = serialization.PrivateFormat.TraditionalOpenSSL  # "RSA PRIVATE KEY"
    elif algorithm == "ECDSA":
        curve = f.string("ecdsaCurve", "P224") or "P224"
        if curve not in _CURVES:
            raise f.error("ecdsaCurve", f"must be one of {', '.join(_CURVES)}")
        key = ec.generate_private_key(_CURVES[curve]())
        pem_format = serialization.PrivateFormat.TraditionalOpenSSL  # "EC PRIVATE KEY"
    elif algorithm == "ED25519":
        key = ed25519.Ed25519PrivateKey.generate()
        pem_format = serialization.PrivateFormat.PKCS8
    else:
        raise f.error("algorithm", f"must be RSA, ECDSA or ED25519, got {algorithm!r}")
    f.finish()
    public = key.public_key()
    openssh_public = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    raw_public = base64.b64decode(openssh_public.split()[1])
    outputs: dict[str, Any] = {
        "privateKeyPem": key.private_bytes(
            serialization.Encoding.PEM, pem_format, serialization.NoEncryption()
        ).decode(),
        "privateKeyPemPkcs8": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "publicKeyPem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "publicKeyOpenssh": openssh_public.decode() + "\n",
        "publicKeyFingerprintMd5": ":".join(f"{byte:02x}" for byte in hashlib.md5(raw_public).digest()),
        "publicKeyFingerprintSha256": "SHA256:"
        + base64.b64encode(hashlib.sha256(raw_public).digest()).decode().rstrip("="),
    }
    try:
        outputs["privateKeyOpenssh"] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ).decode()
    except ValueError:
        outputs["privateKeyOpenssh"] = ""  # P224 has no OpenSSH encoding
    return outputs


def load_private_key(pem: str, where: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except ValueError as exc:
        raise UnsupportedInput(f"{where}: not a PEM private key: {exc}") from exc
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise UnsupportedInput(f"{where}: unsupported key type {type(key).__name__}")
    return key


def _subject(fields: Fields | None) -> x509.Name:
    if fields is None:
        return x509.Name([])
    attributes = []
    for wire, oid in (
        ("country", NameOID.COUNTRY_NAME),
        ("province", NameOID.STATE_OR_PROVINCE_NAME),
        ("locality", NameOID.LOCALITY_NAME),
        ("postalCode", NameOID.POSTAL_CODE),
        ("organization", NameOID.ORGANIZATION_NAME),
        ("organizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME),
        ("commonName", NameOID.COMMON_NAME),
        ("serialNumber", NameOID.SERIAL_NUMBER),
    ):
        value = fields.string(wire)
        if value:
            attributes.append(x509.NameAttribute(oid, value))
    for street in fields.strings("streetAddresses"):
        attributes.append(x509.NameAttribute(NameOID.STREET_ADDRESS, street))
    return x509.Name(attributes)


def _subject_alternative_names(f: Fields) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in f.strings("dnsNames")]
    try:
        names += [x509.IPAddress(ipaddress.ip_address(address)) for address in f.strings("ipAddresses")]
    except ValueError as exc:
        raise f.error("ipAddresses", str(exc)) from exc
    names += [x509.UniformResourceIdentifier(uri) for uri in f.strings("uris")]
    return names


def _usage_extensions(builder: x509.CertificateBuilder, f: Fields) -> x509.CertificateBuilder:
    uses = f.strings("allowedUses")
    unknown = [use for use in uses if use not in _KEY_USAGES and use not in _EXTENDED_KEY_USAGES]
    if unknown:
        raise f.error("allowedUses", f"unsupported uses {unknown}")
    is_ca = f.flag("isCaCertificate", False)
    key_usage = {flag: False for flag in _KEY_USAGES.values()}
    for use in uses:
        if use in _KEY_USAGES:
            key_usage[_KEY_USAGES[use]] = True
    if any(key_usage.values()):
        builder = builder.add_extension(x509.KeyUsage(**key_usage), critical=True)
    extended = [_EXTENDED_KEY_USAGES[use] for use in uses if use in _EXTENDED_KEY_USAGES]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    return builder


def _validity(f: Fields) -> tuple[datetime.datetime, datetime.datetime]:
    hours = f.integer("validityPeriodHours")
    if hours is None or hours < 1:
        raise f.error("validityPeriodHours", "is required and must be at least 1")
    f.accept("earlyRenewalHours")
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return start, start + datetime.timedelta(hours=hours)


def _certificate_outputs(cert: x509.Certificate, start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    return {
        "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "validityStartTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "validityEndTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "readyForRenewal": False,
    }


def self_signed_cert(inputs: Mapping[str, Any], where: str = TLS_SELF_SIGNED_CERT) -> dict[str, Any]:
    f = Fields(inputs, where)
    key = load_private_key(f.required_string("privateKeyPem"), f.path("privateKeyPem"))
    subject = _subject(f.obj("subject"))
    start, end = _validity(f)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    names = _subject_alternative_names(f)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    builder = _usage_extensions(builder, f)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    if f.flag("setSubjectKeyId", False):
        builder = builder.add_extension(ski, critical=False)
    if f.flag("setAuthorityKeyId", False):
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    f.finish()
    cert = builder.sign(key, _signature_hash(key))
    return {**_certificate_outputs(cert, start, end), "keyAlgorithm": _key_algorithm(key)}


def cert_request(inputs: Mapping[str, Any], where: str = TLS_CERT_REQUEST) -> dict[str, Any]:
    f = Fields(inputs, where)
    key = load_private_key(f.required_string("privateKeyPem"), f.path("privateKeyPem"))
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(f.obj("subject")))
    names = _subject_alternative_names(f)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    f.finish()
    request = builder.sign(key, _signature_hash(key))
    return {
        "certRequestPem": request.public_bytes(serialization.Encoding.PEM).decode(),
        "keyAlgorithm": _key_algorithm(key),
    }


def locally_signed_cert(inputs: Mapping[str, Any], where: str = TLS_LOCALLY_SIGNED_CERT) -> dict[str, Any]:
    f = Fields(inputs, where)
    request = x509.load_pem_x509_csr(f.required_string("certRequestPem").encode())
    ca_key = load_private_key(f.required_string("caPrivateKeyPem"), f.path("caPrivateKeyPem"))
    ca_cert = x509.load_pem_x509_certificate(f.required_string("caCertPem").encode())
    start, end = _validity(f)
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca_cert.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    try:
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        builder = builder.add_extension(sans.value, critical=sans.critical)
    except x509.ExtensionNotFound:
        pass
    builder = _usage_extensions(builder, f)
    if f.flag("setSubjectKeyId", False):
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key()), critical=False)
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    except x509.ExtensionNotFound:
        pass
    f.finish()
    cert = builder.sign(ca_key, _signature_hash(ca_key))
    return {**_certificate_outputs(cert, start, end), "caKeyAlgorithm": _key_algorithm(ca_key)}


GENERATORS = {
    RANDOM_PASSWORD: random_string,
    RANDOM_STRING: random_string,
    RANDOM_BYTES: random_bytes,
    RANDOM_ID: random_id,
    RANDOM_UUID: random_uuid,
    RANDOM_INTEGER: random_integer,
    TLS_PRIVATE_KEY: private_key,
    TLS_SELF_SIGNED_CERT: self_signed_cert,
    TLS_CERT_REQUEST: cert_request,
    TLS_LOCALLY_SIGNED_CERT: locally_signed_cert,
}
"""Resource type -> function(inputs, where) -> outputs."""
