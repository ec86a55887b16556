"""Stand-in for the MinIO server: `minio server DIR [--address :9000] [--console-address :9001]`.

An S3-compatible HTTP API on one port (path-style requests, AWS Signature V4 checked against the
root credentials with botocore's own signer), MinIO's unauthenticated health endpoints, and a
placeholder page on the console port. Objects live under DIR as plain files; their metadata,
bucket records and unfinished multipart uploads under DIR/.minio.sys/standin/. See CONTRACT.md.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import email.utils
import fnmatch
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import time
import traceback
import uuid
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from botocore.auth import EMPTY_SHA256_HASH, HmacV1Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

VERSION = "RELEASE.2025-04-22T22-12-26Z"
S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
OWNER_ID = "02d6176db174dc93cb1b899f7c6078f08654445fe8cf1b6ce98d8855f66bdbf4"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_SKEW = 15 * 60
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_XML_BODY = 16 * 1024 * 1024
COPY_BUFFER = 1024 * 1024

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
STORED_HEADERS = ("content-type", "cache-control", "content-disposition", "content-encoding",
                  "content-language", "expires")
BUCKET_SUBRESOURCES = {
    "acl", "cors", "encryption", "lifecycle", "location", "logging", "notification", "object-lock",
    "policy", "policyStatus", "replication", "requestPayment", "tagging", "uploads", "versioning",
    "versions", "website", "delete", "accelerate", "analytics", "inventory", "metrics",
    "ownershipControls", "publicAccessBlock", "intelligent-tiering",
}
ADMIN_PREFIX = "/minio/admin/v3/"
OBJECT_SUBRESOURCES = {"acl", "tagging", "retention", "legal-hold", "torrent", "restore", "select",
                       "attributes", "uploads", "uploadId"}


# ------------------------------------------------------------------------------------------------
# Errors


ERRORS = {
    "AccessDenied": (403, "Access Denied."),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed; the region is wrong."),
    "AuthorizationQueryParametersError": (400, "Error parsing the X-Amz-Credential parameter."),
    "BadDigest": (400, "The Content-Md5 you specified did not match what we received."),
    "BucketAlreadyOwnedByYou": (409, "Your previous request to create the named bucket succeeded and you already own it."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed object size."),
    "ExpiredPresignRequest": (403, "Request has expired"),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the Content-Length HTTP header."),
    "InternalError": (500, "We encountered an internal error, please try again."),
    "InvalidAccessKeyId": (403, "The Access Key Id you provided does not exist in our records."),
    "InvalidArgument": (400, "Invalid argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-Md5 you specified is not valid."),
    "InvalidPart": (400, "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order. The parts list must be specified in order by part number."),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "KeyTooLongError": (400, "Your key is too long"),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate against our published schema."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "MissingDateHeader": (400, "AWS authentication requires a valid Date or x-amz-date header"),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchBucketPolicy": (404, "The bucket policy does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (404, "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the server's time is too large."),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the signature you provided. Check your key and signing method."),
    "SignatureVersionNotSupported": (400, "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not match what was computed."),
    "XMinioAdminInvalidArgument": (400, "Invalid arguments specified."),
    "XMinioAdminNoSuchPolicy": (404, "The canned policy does not exist."),
    "XMinioAdminNoSuchUser": (404, "The specified user does not exist."),
    "XMinioAdminPolicyChangeAlreadyApplied": (400, "The specified policy change is already in effect."),
    "XMinioMalformedJSON": (400, "The JSON you provided was not well-formed or did not validate against our published format."),
    "XMinioInvalidObjectName": (400, "Object name contains unsupported characters."),
    "XMinioObjectExistsAsDirectory": (400, "Object name already exists as a directory."),
    "XMinioParentIsObject": (400, "Object-prefix is already an object, please choose a different object-prefix name."),
}
# Codes whose wire name differs from the key above.
WIRE_CODE = {
    "ExpiredPresignRequest": "AccessDenied",
    "MissingDateHeader": "AccessDenied",
    "SignatureVersionNotSupported": "InvalidRequest",
}


class S3Error(Exception):
    def __init__(self, code: str, message: str | None = None, **fields: str) -> None:
        status, default = ERRORS[code]
        super().__init__(message or default)
        self.code = WIRE_CODE.get(code, code)
        self.status = status
        self.message = message or default
        self.fields = fields


# ------------------------------------------------------------------------------------------------
# Time and XML helpers


def iso8601(ts: float) -> str:
    dt = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def esc(value: object) -> str:
    text = str(value)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def xml_doc(root: str, body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{S3_XMLNS}">{body}</{root}>'
            ).encode("utf-8")


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_xml(data: bytes) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise S3Error("MalformedXML") from exc


def children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element if local_name(child.tag) == name]


def child_text(element: ElementTree.Element, name: str) -> str | None:
    for child in element:
        if local_name(child.tag) == name:
            return child.text or ""
    return None


# ------------------------------------------------------------------------------------------------
# Storage


@dataclass
class ObjectInfo:
    key: str
    size: int
    mtime: float
    etag: str
    headers: dict[str, str] = field(default_factory=dict)  # content-type etc. and x-amz-meta-*
    path: str = ""
    is_dir_marker: bool = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/octet-stream")


def validate_bucket_name(bucket: str) -> None:
    if (not BUCKET_NAME.match(bucket) or ".." in bucket or ".-" in bucket or "-." in bucket
            or IP_ADDRESS.match(bucket)):
        raise S3Error("InvalidBucketName", BucketName=bucket)


def validate_key(key: str) -> None:
    if not key:
        raise S3Error("XMinioInvalidObjectName", Key=key)
    if len(key.encode("utf-8", "surrogateescape")) > 1024:
        raise S3Error("KeyTooLongError", Key=key)
    if key.startswith("/") or "\x00" in key or "\\" in key:
        raise S3Error("XMinioInvalidObjectName", Key=key)
    parts = key.split("/")
    if key.endswith("/"):
        parts = parts[:-1]
    for part in parts:
        if part in ("", ".", ".."):
            raise S3Error("XMinioInvalidObjectName", Key=key)
        if len(part.encode("utf-8", "surrogateescape")) > 255:
            raise S3Error("KeyTooLongError", Key=key)


class Store:
    """Buckets are directories of DIR, objects are files below them (keys ending in "/" are
    directories marked as objects). Metadata lives apart, under DIR/.minio.sys/standin/, keyed by
    a hash of the object name so that no object name can collide with it."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.sys = os.path.join(self.root, ".minio.sys", "standin")
        self.tmp = os.path.join(self.sys, "tmp")
        self.multipart = os.path.join(self.sys, "multipart")
        self.lock = threading.RLock()
        for path in (self.tmp, self.multipart, os.path.join(self.sys, "buckets"),
                     os.path.join(self.sys, "meta")):
            os.makedirs(path, exist_ok=True)
        # Leftovers of requests cut short by a stop.
        for name in os.listdir(self.tmp):
            try:
                os.unlink(os.path.join(self.tmp, name))
            except OSError:
                pass

    # --- paths

    def bucket_dir(self, bucket: str) -> str:
        return os.path.join(self.root, bucket)

    def bucket_record(self, bucket: str) -> str:
        return os.path.join(self.sys, "buckets", bucket + ".json")

    def object_path(self, bucket: str, key: str) -> str:
        return os.path.join(self.root, bucket, *key.rstrip("/").split("/"))

    def meta_path(self, bucket: str, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        return os.path.join(self.sys, "meta", bucket, digest[:2], digest + ".json")

    def temp_file(self) -> tuple[int, str]:
        return tempfile.mkstemp(dir=self.tmp, prefix="put-")

    # --- helpers

    @staticmethod
    def write_json(path: str, value: object) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle)
        os.replace(tmp, path)

    @staticmethod
    def read_json(path: str) -> dict | None:
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    # --- buckets

    def bucket_exists(self, bucket: str) -> bool:
        return not bucket.startswith(".") and os.path.isdir(self.bucket_dir(bucket))

    def require_bucket(self, bucket: str) -> None:
        if not self.bucket_exists(bucket):
            raise S3Error("NoSuchBucket", BucketName=bucket)

    def list_buckets(self) -> list[tuple[str, float]]:
        result = []
        for name in sorted(os.listdir(self.root)):
            if name.startswith(".") or not os.path.isdir(self.bucket_dir(name)):
                continue
            record = self.read_json(self.bucket_record(name)) or {}
            created = record.get("created") or os.stat(self.bucket_dir(name)).st_ctime
            result.append((name, created))
        return result

    def create_bucket(self, bucket: str) -> None:
        validate_bucket_name(bucket)
        with self.lock:
            if self.bucket_exists(bucket):
                raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket)
            os.makedirs(self.bucket_dir(bucket))
            self.write_json(self.bucket_record(bucket), {"created": time.time()})

    def delete_bucket(self, bucket: str) -> None:
        with self.lock:
            self.require_bucket(bucket)
            if any(True for _ in self.iter_keys(bucket)):
                raise S3Error("BucketNotEmpty", BucketName=bucket)
            shutil.rmtree(self.bucket_dir(bucket))
            shutil.rmtree(os.path.join(self.sys, "meta", bucket), ignore_errors=True)
            try:
                os.unlink(self.bucket_record(bucket))
            except FileNotFoundError:
                pass

    # --- objects

    def iter_keys(self, bucket: str) -> Iterator[str]:
        """Every object name of the bucket, unordered."""
        base = self.bucket_dir(bucket)
        for dirpath, dirnames, filenames in os.walk(base):
            rel = os.path.relpath(dirpath, base)
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            if prefix and os.path.exists(self.meta_path(bucket, prefix)):
                yield prefix
            for name in filenames:
                yield prefix + name

    def sorted_keys(self, bucket: str, prefix: str) -> list[str]:
        return sorted(key for key in self.iter_keys(bucket) if key.startswith(prefix))

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        self.require_bucket(bucket)
        validate_key(key)
        path = self.object_path(bucket, key)
        meta = self.read_json(self.meta_path(bucket, key))
        if key.endswith("/"):
            if meta is None or not os.path.isdir(path):
                raise S3Error("NoSuchKey", Key=key)
            return ObjectInfo(key, 0, meta.get("mtime", 0.0), meta.get("etag", hashlib.md5(b"").hexdigest()),
                              meta.get("headers", {}), path, True)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise S3Error("NoSuchKey", Key=key) from None
        if not os.path.isfile(path):
            raise S3Error("NoSuchKey", Key=key)
        if meta is None or meta.get("size") != st.st_size:
            # A file put there by other means: describe it from the file itself.
            md5 = hashlib.md5()
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(COPY_BUFFER), b""):
                    md5.update(chunk)
            meta = {"etag": md5.hexdigest(), "headers": {}, "mtime": st.st_mtime, "size": st.st_size}
        return ObjectInfo(key, st.st_size, meta.get("mtime", st.st_mtime), meta["etag"],
                          meta.get("headers", {}), path)

    def _check_place(self, bucket: str, key: str) -> None:
        """Refuse names that would need a file to be a directory, or the other way round."""
        parts = key.rstrip("/").split("/")
        current = self.bucket_dir(bucket)
        for part in parts[:-1]:
            current = os.path.join(current, part)
            if os.path.isfile(current):
                raise S3Error("XMinioParentIsObject", Key=key)
        target = self.object_path(bucket, key)
        if key.endswith("/"):
            if os.path.isfile(target):
                raise S3Error("XMinioParentIsObject", Key=key)
        elif os.path.isdir(target):
            raise S3Error("XMinioObjectExistsAsDirectory", Key=key)

    def put(self, bucket: str, key: str, tmp_path: str | None, size: int, etag: str,
            headers: dict[str, str]) -> ObjectInfo:
        """Move a finished upload (tmp_path) into place as bucket/key."""
        validate_key(key)
        now = time.time()
        with self.lock:
            self.require_bucket(bucket)
            self._check_place(bucket, key)
            target = self.object_path(bucket, key)
            if key.endswith("/"):
                if size:
                    raise S3Error("XMinioInvalidObjectName", "Directory objects must be empty.", Key=key)
                os.makedirs(target, exist_ok=True)
                if tmp_path:
                    os.unlink(tmp_path)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                assert tmp_path is not None
                os.replace(tmp_path, target)
                os.utime(target, (now, now))
            self.write_json(self.meta_path(bucket, key),
                            {"etag": etag, "headers": headers, "mtime": now, "size": size})
        return ObjectInfo(key, size, now, etag, headers, target, key.endswith("/"))

    def delete(self, bucket: str, key: str) -> None:
        validate_key(key)
        with self.lock:
            self.require_bucket(bucket)
            path = self.object_path(bucket, key)
            meta = self.meta_path(bucket, key)
            if key.endswith("/"):
                if not os.path.exists(meta):
                    return
                os.unlink(meta)
                self._prune(bucket, path)
                return
            if os.path.isfile(path):
                os.unlink(path)
                self._prune(bucket, os.path.dirname(path))
            try:
                os.unlink(meta)
            except FileNotFoundError:
                pass

    def _prune(self, bucket: str, directory: str) -> None:
        """Remove directories left empty, up to the bucket, unless they are directory objects."""
        base = self.bucket_dir(bucket)
        while directory != base and directory.startswith(base + os.sep):
            rel = os.path.relpath(directory, base).replace(os.sep, "/") + "/"
            if os.path.exists(self.meta_path(bucket, rel)):
                return
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    # --- multipart uploads

    def upload_dir(self, upload_id: str) -> str:
        if not re.fullmatch(r"[0-9a-f-]{36}", upload_id):
            raise S3Error("NoSuchUpload")
        return os.path.join(self.multipart, upload_id)

    def upload_info(self, bucket: str, key: str, upload_id: str) -> dict:
        info = self.read_json(os.path.join(self.upload_dir(upload_id), "upload.json"))
        if info is None or info.get("bucket") != bucket or info.get("key") != key:
            raise S3Error("NoSuchUpload")
        return info


# ------------------------------------------------------------------------------------------------
# Signature V4


class _ServerSideSigV4(S3SigV4Auth):
    """botocore's S3 SigV4 signer, fed the headers the client signed and the payload hash it
    declared, so that it computes the signature the client must have computed."""

    def __init__(self, credentials: Credentials, region: str, headers: HTTPHeaders, payload: str):
        super().__init__(credentials, "s3", region)
        self._signed = headers
        self._payload = payload

    def headers_to_sign(self, request):  # noqa: D401 - botocore's hook
        return self._signed

    def payload(self, request):
        return self._payload


class _ServerSideSigV2(HmacV1Auth):
    """botocore's S3 Signature V2 signer with the date (or expiry) the client signed."""

    def __init__(self, credentials: Credentials, date: str) -> None:
        super().__init__(credentials)
        self._date = date

    def _get_date(self):
        return self._date


@dataclass
class AuthContext:
    signer: _ServerSideSigV4
    request: AWSRequest
    signature: str
    payload: str
    timestamp: str
    declared: bool = True  # whether the client sent x-amz-content-sha256 (else nothing to check)
    access_key: str = ""  # who signed: the root user or a user of the IAM store


def canonical_path(raw_path: str) -> str:
    return quote(unquote(raw_path), safe="/~")


class Authenticator:
    """Checks a request's signature against the secret key of the access key that signed it: the
    root user's, or a user's of the IAM store."""

    def __init__(self, access_key: str, secret_key: str, region: str, iam: "Iam") -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.iam = iam

    def credentials(self, access_key: str) -> Credentials:
        if access_key == self.access_key:
            return Credentials(access_key, self.secret_key)
        secret = self.iam.secret_key(access_key)
        if secret is None:
            raise S3Error("InvalidAccessKeyId")
        return Credentials(access_key, secret)

    def _check_scope(self, credential: str, timestamp: str, error: str) -> tuple[str, str]:
        """The region and the access key of a SigV4 credential scope."""
        parts = credential.split("/")
        if len(parts) < 5 or parts[-1] != "aws4_request" or parts[-2] != "s3":
            raise S3Error(error)
        access_key = "/".join(parts[:-4])
        date, region = parts[-4], parts[-3]
        self.credentials(access_key)  # an unknown key is refused before its date or region
        if date != timestamp[:8]:
            raise S3Error(error, "Credential date does not match the request date.")
        if self.region and region != self.region and not (self.region == "us-east-1" and region == "US"):
            raise S3Error("AuthorizationHeaderMalformed",
                          f"The authorization header is malformed; the region is wrong; expecting '{self.region}'.")
        return region, access_key

    @staticmethod
    def _parse_timestamp(value: str, error: str) -> float:
        try:
            return calendar.timegm(time.strptime(value, SIGV4_TIMESTAMP))
        except ValueError:
            raise S3Error(error) from None

    def _signed_headers(self, handler: BaseHTTPRequestHandler, names: list[str]) -> HTTPHeaders:
        signed = HTTPHeaders()
        for name in names:
            values = handler.headers.get_all(name)
            if values is None:
                raise S3Error("SignatureDoesNotMatch")
            signed[name] = ",".join(values)
        return signed

    def verify(self, handler: BaseHTTPRequestHandler, raw_path: str,
               query: list[tuple[str, str]]) -> AuthContext | None:
        """Check the request's signature; None for an anonymous request."""
        header = handler.headers.get("Authorization")
        query_keys = {k for k, _ in query}
        if header and header.startswith("AWS "):
            access_key, _, given = header[4:].strip().rpartition(":")
            date = handler.headers.get("Date", "")
            parsed = email.utils.parsedate_tz(date) if date else None
            if parsed is None and not handler.headers.get("x-amz-date"):
                raise S3Error("MissingDateHeader")
            if parsed is not None and abs(time.time() - email.utils.mktime_tz(parsed)) > MAX_SKEW:
                raise S3Error("RequestTimeTooSkewed")
            self._verify_v2(handler, access_key, given, date, raw_path)
            return self._v2_context(access_key)
        if "AWSAccessKeyId" in query_keys and "Signature" in query_keys:
            values = dict(query)
            expires = values.get("Expires", "")
            if not expires.isdigit():
                raise S3Error("AccessDenied", "Query-string authentication requires the Expires parameter.")
            if time.time() > int(expires):
                raise S3Error("ExpiredPresignRequest")
            self._verify_v2(handler, values["AWSAccessKeyId"], values["Signature"], expires, raw_path)
            return self._v2_context(values["AWSAccessKeyId"])
        if header:
            if not header.startswith("AWS4-HMAC-SHA256 "):
                raise S3Error("SignatureVersionNotSupported")
            fields = {}
            for item in header[len("AWS4-HMAC-SHA256 "):].split(","):
                name, _, value = item.strip().partition("=")
                fields[name] = value
            if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
                raise S3Error("AuthorizationHeaderMalformed", "The authorization header is malformed.")
            amz_date = handler.headers.get("x-amz-date")
            if amz_date:
                request_time = self._parse_timestamp(amz_date, "MissingDateHeader")
                timestamp = amz_date
            elif handler.headers.get("Date"):
                parsed = email.utils.parsedate_tz(handler.headers["Date"])
                if parsed is None:
                    raise S3Error("MissingDateHeader")
                request_time = email.utils.mktime_tz(parsed)
                timestamp = time.strftime(SIGV4_TIMESTAMP, time.gmtime(request_time))
            else:
                raise S3Error("MissingDateHeader")
            region, access_key = self._check_scope(fields["Credential"], timestamp, "AuthorizationHeaderMalformed")
            if abs(time.time() - request_time) > MAX_SKEW:
                raise S3Error("RequestTimeTooSkewed")
            names = [n.strip().lower() for n in fields["SignedHeaders"].split(";") if n.strip()]
            if "host" not in names:
                raise S3Error("AccessDenied", "The host header must be signed.")
            # Without the header the signature covers the empty payload's hash, and the body is
            # not checked (as MinIO does).
            declared = handler.headers.get("x-amz-content-sha256")
            payload = declared or EMPTY_SHA256_HASH
            params = list(query)
            given = fields["Signature"]
        elif "X-Amz-Algorithm" in query_keys:
            values = dict(query)
            if values.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
                raise S3Error("SignatureVersionNotSupported")
            for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"):
                if name not in values:
                    raise S3Error("AuthorizationQueryParametersError", f"Query-string authentication requires {name}.")
            timestamp = values["X-Amz-Date"]
            request_time = self._parse_timestamp(timestamp, "AuthorizationQueryParametersError")
            region, access_key = self._check_scope(values["X-Amz-Credential"], timestamp, "AuthorizationQueryParametersError")
            try:
                expires = int(values.get("X-Amz-Expires", "604800"))
            except ValueError:
                raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires should be a number") from None
            now = time.time()
            if request_time - now > MAX_SKEW:
                raise S3Error("RequestTimeTooSkewed")
            if now > request_time + expires:
                raise S3Error("ExpiredPresignRequest")
            names = [n.strip().lower() for n in values["X-Amz-SignedHeaders"].split(";") if n.strip()]
            declared = values.get("X-Amz-Content-Sha256") or handler.headers.get("x-amz-content-sha256")
            payload = declared or UNSIGNED_PAYLOAD
            params = [(k, v) for k, v in query if k != "X-Amz-Signature"]
            given = values["X-Amz-Signature"]
        else:
            return None

        signed = self._signed_headers(handler, names)
        signer = _ServerSideSigV4(self.credentials(access_key), region, signed, payload)
        request = AWSRequest(method=handler.command, url="http://stand-in" + canonical_path(raw_path),
                             params=params)
        request.context["timestamp"] = timestamp
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, given):
            raise S3Error("SignatureDoesNotMatch")
        return AuthContext(signer, request, expected, payload, timestamp, declared is not None, access_key)

    def _verify_v2(self, handler: BaseHTTPRequestHandler, access_key: str, given: str, date: str,
                   raw_path: str) -> None:
        credentials = self.credentials(access_key)
        headers = HTTPHeaders()
        for name, value in handler.headers.items():
            lname = name.lower()
            if lname in ("content-md5", "content-type") or lname.startswith("x-amz-"):
                headers[lname] = value
        raw_query = handler.path.partition("?")[2]
        signer = _ServerSideSigV2(credentials, date)
        split = urlsplit("http://stand-in" + raw_path + ("?" + raw_query if raw_query else ""))
        expected = signer.get_signature(handler.command, split, headers)
        if not hmac.compare_digest(expected, given):
            raise S3Error("SignatureDoesNotMatch")

    @staticmethod
    def _v2_context(access_key: str) -> AuthContext:
        """Signature V2 signs no payload: the body is taken as it comes."""
        return AuthContext(None, None, "", UNSIGNED_PAYLOAD, "", access_key=access_key)  # type: ignore[arg-type]

    @staticmethod
    def chunk_signature(ctx: AuthContext, previous: str, chunk_hash: str) -> str:
        string_to_sign = "\n".join([
            "AWS4-HMAC-SHA256-PAYLOAD", ctx.timestamp, ctx.signer.credential_scope(ctx.request),
            previous, EMPTY_SHA256_HASH, chunk_hash,
        ])
        return ctx.signer.signature(string_to_sign, ctx.request)


class Iam:
    """Users, their policies and the policies' documents, as MinIO's IAM keeps them beside the
    data (DIR/.minio.sys/standin/iam.json): what `mc admin user add`, `mc admin policy create`
    and `mc admin policy attach` set. A user may do what an attached policy allows; the root
    user may do everything."""

    def __init__(self, store: Store) -> None:
        self.path = os.path.join(store.sys, "iam.json")
        self.lock = threading.Lock()

    def _read(self) -> dict:
        return Store.read_json(self.path) or {"users": {}, "policies": {}}

    def _update(self, change) -> None:
        with self.lock:
            state = self._read()
            change(state)
            Store.write_json(self.path, state)

    def secret_key(self, access_key: str) -> str | None:
        user = self._read()["users"].get(access_key)
        return user["secretKey"] if user and user.get("status", "enabled") == "enabled" else None

    def add_user(self, access_key: str, secret_key: str) -> None:
        if len(access_key) < 3 or len(secret_key) < 8:
            raise S3Error("XMinioAdminInvalidArgument", "access key at least 3 and secret key at least 8 characters")

        def change(state: dict) -> None:
            policies = state["users"].get(access_key, {}).get("policies", [])
            state["users"][access_key] = {"secretKey": secret_key, "status": "enabled", "policies": policies}

        self._update(change)

    def add_policy(self, name: str, document: dict) -> None:
        if not isinstance(document.get("Statement"), list):
            raise S3Error("XMinioMalformedJSON", "a policy needs a Statement list")
        self._update(lambda state: state["policies"].__setitem__(name, document))

    def attach(self, policies: list[str], user: str) -> None:
        state = self._read()
        if user not in state["users"]:
            raise S3Error("XMinioAdminNoSuchUser", f"The specified user does not exist: {user}")
        missing = [name for name in policies if name not in state["policies"]]
        if missing:
            raise S3Error("XMinioAdminNoSuchPolicy", f"The canned policy does not exist: {missing[0]}")
        if set(policies) <= set(state["users"][user]["policies"]):
            raise S3Error("XMinioAdminPolicyChangeAlreadyApplied", "The specified policy change is already in effect.")
        self._update(lambda state: state["users"][user].__setitem__(
            "policies", sorted(set(state["users"][user]["policies"]) | set(policies))))

    def allows(self, access_key: str, action: str, resource: str) -> bool:
        """Whether a policy attached to the user allows `action` (e.g. s3:GetObject) on `resource`
        (arn:aws:s3:::BUCKET[/KEY]); an explicit Deny wins."""
        state = self._read()
        statements = [
            statement
            for name in state["users"].get(access_key, {}).get("policies", [])
            for statement in state["policies"].get(name, {}).get("Statement", [])
        ]

        def matches(statement: dict) -> bool:
            actions = statement.get("Action", [])
            resources = statement.get("Resource", [])
            actions = [actions] if isinstance(actions, str) else actions
            resources = [resources] if isinstance(resources, str) else resources
            return any(fnmatch.fnmatchcase(action, pattern) for pattern in actions) and any(
                fnmatch.fnmatchcase(resource, pattern) for pattern in resources)

        if any(statement.get("Effect") == "Deny" and matches(statement) for statement in statements):
            return False
        return any(statement.get("Effect") == "Allow" and matches(statement) for statement in statements)


# ------------------------------------------------------------------------------------------------
# HTTP


class Body:
    """The request body as a stream of decoded bytes: Content-Length or chunked transfer
    encoding, then aws-chunked content encoding (with its chunk signatures checked)."""

    def __init__(self, handler: "S3Handler", auth: AuthContext | None) -> None:
        self.handler = handler
        self.rfile = handler.rfile
        self.auth = auth
        headers = handler.headers
        self.http_chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        length = headers.get("Content-Length")
        self.remaining = int(length) if length and length.isdigit() else 0
        if length is not None and not length.isdigit():
            raise S3Error("MissingContentLength")
        self.present = self.http_chunked or self.remaining > 0
        self.consumed = not self.present
        self._http_chunk_left = 0
        self._http_done = False
        payload = (auth.payload if auth and auth.declared else "") or ""
        self.aws_chunked = payload in STREAMING_MODES
        self.signed_chunks = payload in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        decoded = headers.get("x-amz-decoded-content-length")
        self.decoded_length = int(decoded) if decoded and decoded.isdigit() else None
        self.expected_sha256 = payload if re.fullmatch(r"[0-9a-f]{64}", payload) else None

    # raw layer
    def _read_raw(self, size: int) -> bytes:
        if self.http_chunked:
            out = bytearray()
            while size > 0 and not self._http_done:
                if self._http_chunk_left == 0:
                    line = self.rfile.readline(65537)
                    try:
                        self._http_chunk_left = int(line.split(b";")[0].strip(), 16)
                    except ValueError:
                        raise S3Error("IncompleteBody") from None
                    if self._http_chunk_left == 0:
                        while self.rfile.readline(65537).strip():
                            pass
                        self._http_done = True
                        break
                data = self.rfile.read(min(size, self._http_chunk_left))
                if not data:
                    raise S3Error("IncompleteBody")
                out += data
                size -= len(data)
                self._http_chunk_left -= len(data)
                if self._http_chunk_left == 0:
                    self.rfile.readline(3)
            return bytes(out)
        size = min(size, self.remaining)
        if size <= 0:
            return b""
        data = self.rfile.read(size)
        if len(data) < size:
            raise S3Error("IncompleteBody")
        self.remaining -= len(data)
        return data

    def _read_raw_exact(self, size: int) -> bytes:
        data = self._read_raw(size)
        if len(data) != size:
            raise S3Error("IncompleteBody")
        return data

    def _read_raw_line(self) -> bytes:
        line = bytearray()
        while not line.endswith(b"\r\n"):
            ch = self._read_raw(1)
            if not ch:
                raise S3Error("IncompleteBody")
            line += ch
            if len(line) > 8192:
                raise S3Error("IncompleteBody")
        return bytes(line[:-2])

    # decoded layer
    def chunks(self) -> Iterator[bytes]:
        if self.aws_chunked:
            yield from self._aws_chunks()
        else:
            sha = hashlib.sha256() if self.expected_sha256 else None
            while True:
                data = self._read_raw(COPY_BUFFER)
                if not data:
                    break
                if sha:
                    sha.update(data)
                yield data
            if sha and sha.hexdigest() != self.expected_sha256:
                self.consumed = True
                raise S3Error("XAmzContentSHA256Mismatch")
        self.consumed = True

    def _aws_chunks(self) -> Iterator[bytes]:
        previous = self.auth.signature if self.auth else ""
        total = 0
        while True:
            header = self._read_raw_line().decode("latin-1")
            size_text, _, ext = header.partition(";")
            try:
                size = int(size_text.strip(), 16)
            except ValueError:
                raise S3Error("IncompleteBody") from None
            data = self._read_raw_exact(size) if size else b""
            if self.signed_chunks and self.auth:
                name, _, given = ext.strip().partition("=")
                if name != "chunk-signature":
                    raise S3Error("SignatureDoesNotMatch")
                expected = Authenticator.chunk_signature(self.auth, previous,
                                                         hashlib.sha256(data).hexdigest())
                if not hmac.compare_digest(expected, given.strip()):
                    raise S3Error("SignatureDoesNotMatch")
                previous = expected
            if size == 0:
                # Trailing headers (checksums, trailer signature), then an empty line.
                while True:
                    try:
                        line = self._read_raw_line()
                    except S3Error:
                        break
                    if not line:
                        break
                break
            self._read_raw_exact(2)  # CRLF after the chunk data
            total += size
            yield data
        if self.decoded_length is not None and total != self.decoded_length:
            raise S3Error("IncompleteBody")

    def read_all(self, limit: int = MAX_XML_BODY) -> bytes:
        out = bytearray()
        for chunk in self.chunks():
            out += chunk
            if len(out) > limit:
                raise S3Error("InvalidRequest", "Request body too large.")
        return bytes(out)

    def to_file(self, path_fd: int) -> tuple[int, str, str]:
        """Write the body to an open file descriptor; return size, md5 hex, md5 base64."""
        md5 = hashlib.md5()
        size = 0
        with os.fdopen(path_fd, "wb") as handle:
            for chunk in self.chunks():
                handle.write(chunk)
                md5.update(chunk)
                size += len(chunk)
        return size, md5.hexdigest(), base64.b64encode(md5.digest()).decode()


class S3Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MinIO"
    sys_version = ""
    store: Store
    auth: Authenticator
    trace = False

    # ----- plumbing

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        if self.trace:
            sys.stdout.write("%s - %s\n" % (self.address_string(), format % args))
            sys.stdout.flush()

    def do_GET(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def do_OPTIONS(self) -> None:
        self.dispatch()

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
             content_type: str | None = "application/xml") -> None:
        self.send_response(status)
        request_id = secrets.token_hex(8).upper()
        self.send_header("x-amz-request-id", request_id)
        self.send_header("x-amz-id-2", hashlib.sha256(request_id.encode()).hexdigest())
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Vary", "Origin")
        if headers:
            for name, value in headers.items():
                self.send_header(name, value)
        if body and content_type and not (headers and "Content-Type" in headers):
            self.send_header("Content-Type", content_type)
        if not (headers and "Content-Length" in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_error_xml(self, error: S3Error, resource: str) -> None:
        fields = "".join(f"<{name}>{esc(value)}</{name}>" for name, value in error.fields.items())
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{esc(error.code)}</Code>'
                f"<Message>{esc(error.message)}</Message>{fields}<Resource>{esc(resource)}</Resource>"
                f"<RequestId>{secrets.token_hex(8).upper()}</RequestId><HostId></HostId></Error>").encode()
        self.send(error.status, b"" if self.command == "HEAD" else body,
                  headers={"Content-Length": "0"} if self.command == "HEAD" else None)

    # ----- routing

    def dispatch(self) -> None:
        raw_path, _, raw_query = self.path.partition("?")
        if raw_path.startswith("http://") or raw_path.startswith("https://"):
            raw_path = "/" + raw_path.split("/", 3)[3] if raw_path.count("/") >= 3 else "/"
        path = unquote(raw_path)
        query = parse_qsl(raw_query, keep_blank_values=True)
        body: Body | None = None
        try:
            if path.startswith("/minio/") and not path.startswith(ADMIN_PREFIX):
                self.minio_path(path)
                return
            auth = self.auth.verify(self, raw_path, query)
            body = Body(self, auth)
            if auth is None:
                raise S3Error("AccessDenied")
            params = dict(query)
            if path.startswith(ADMIN_PREFIX):
                self.admin(auth, path[len(ADMIN_PREFIX):], params, body)
                return
            bucket, _, key = path.lstrip("/").partition("/")
            self.authorize(auth, bucket, key)
            if not bucket:
                self.service(body, auth)
            elif not key:
                self.bucket_op(bucket, params, body)
            else:
                self.object_op(bucket, key, params, body)
        except S3Error as error:
            if body is None or not body.consumed:
                self.close_connection = True
            self.send_error_xml(error, path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # noqa: BLE001 - report, keep serving
            traceback.print_exc()
            self.close_connection = True
            try:
                self.send_error_xml(S3Error("InternalError"), path)
            except OSError:
                pass

    def authorize(self, auth: AuthContext, bucket: str, key: str) -> None:
        """The root user may do everything; another user what its policies allow (AccessDenied)."""
        if auth.access_key == self.auth.access_key:
            return
        method = "GET" if self.command == "HEAD" else self.command
        if not bucket:
            return  # the listing shows such a user the buckets it may list (service)
        if not key:
            action = {"GET": "s3:ListBucket", "PUT": "s3:CreateBucket", "DELETE": "s3:DeleteBucket"}.get(method, "s3:ListBucket")
            resource = f"arn:aws:s3:::{bucket}"
        else:
            action = {"GET": "s3:GetObject", "PUT": "s3:PutObject", "POST": "s3:PutObject", "DELETE": "s3:DeleteObject"}.get(method, "s3:GetObject")
            resource = f"arn:aws:s3:::{bucket}/{key}"
        if not self.auth.iam.allows(auth.access_key, action, resource):
            raise S3Error("AccessDenied")

    def admin(self, auth: AuthContext, operation: str, params: dict[str, str], body: Body) -> None:
        """The admin API's user and policy calls, for the root user only. Unlike MinIO's, a new
        user's secret key comes as plain JSON, not encrypted with madmin: only this stand-in's mc
        speaks it. Errors are MinIO's admin JSON errors."""
        try:
            if auth.access_key != self.auth.access_key:
                raise S3Error("AccessDenied")
            document = json.loads(body.read_all() or b"{}")
            iam = self.auth.iam
            if operation == "add-user" and self.command == "PUT":
                iam.add_user(params.get("accessKey", ""), document.get("secretKey", ""))
            elif operation == "add-canned-policy" and self.command == "PUT":
                iam.add_policy(params.get("name", ""), document)
            elif operation == "idp/builtin/policy/attach" and self.command == "POST":
                iam.attach(document.get("policies", []), document.get("user", ""))
            else:
                raise S3Error("NotImplemented", f"This stand-in's admin API has no {self.command} {operation}.")
        except ValueError:
            error = S3Error("XMinioMalformedJSON")
        except S3Error as raised:
            error = raised
        else:
            self.send(200, b"", content_type=None)
            return
        answer = json.dumps({"Code": error.code, "Message": error.message}).encode()
        self.send(error.status, answer, headers={"Content-Type": "application/json"})

    def minio_path(self, path: str) -> None:
        if path in ("/minio/health/live", "/minio/health/ready", "/minio/health/cluster",
                    "/minio/health/cluster/read") and self.command in ("GET", "HEAD"):
            self.send(200, content_type=None, headers={"Strict-Transport-Security": "max-age=31536000; includeSubDomains"})
            return
        raise S3Error("NotImplemented", "This stand-in serves only MinIO's health endpoints under /minio/.")

    def service(self, body: Body, auth: AuthContext) -> None:
        """ListBuckets: every bucket for the root user or a user allowed s3:ListAllMyBuckets, else
        (as MinIO does) the buckets the user may list."""
        if self.command not in ("GET", "HEAD"):
            raise S3Error("MethodNotAllowed")
        body.read_all()
        iam, everything = self.auth.iam, auth.access_key == self.auth.access_key
        everything = everything or iam.allows(auth.access_key, "s3:ListAllMyBuckets", "arn:aws:s3:::*")
        items = "".join(
            f"<Bucket><Name>{esc(name)}</Name><CreationDate>{iso8601(created)}</CreationDate></Bucket>"
            for name, created in self.store.list_buckets()
            if everything or iam.allows(auth.access_key, "s3:ListBucket", f"arn:aws:s3:::{name}"))
        self.send(200, xml_doc("ListAllMyBucketsResult",
                               f"<Owner><ID>{OWNER_ID}</ID><DisplayName>minio</DisplayName></Owner>"
                               f"<Buckets>{items}</Buckets>"))

    def bucket_op(self, bucket: str, params: dict[str, str], body: Body) -> None:
        method = self.command
        sub = [name for name in params if name in BUCKET_SUBRESOURCES]
        store = self.store
        if method == "PUT" and not sub:
            body.read_all()  # CreateBucketConfiguration: the region is not checked
            store.create_bucket(bucket)
            self.send(200, headers={"Location": "/" + bucket})
        elif method == "HEAD" and not sub:
            body.read_all()
            store.require_bucket(bucket)
            self.send(200, headers={"X-Amz-Bucket-Region": self.auth.region or "us-east-1"})
        elif method == "DELETE" and not sub:
            body.read_all()
            store.delete_bucket(bucket)
            self.send(204, content_type=None)
        elif method == "GET" and not sub:
            body.read_all()
            store.require_bucket(bucket)
            self.list_objects(bucket, params)
        elif method == "GET" and sub == ["location"]:
            body.read_all()
            store.require_bucket(bucket)
            region = self.auth.region
            self.send(200, f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="{S3_XMLNS}">'
                           f"{esc(region)}</LocationConstraint>".encode())
        elif method == "GET" and sub == ["versioning"]:
            body.read_all()
            store.require_bucket(bucket)
            self.send(200, xml_doc("VersioningConfiguration", ""))
        elif method == "GET" and sub == ["policy"]:
            body.read_all()
            store.require_bucket(bucket)
            raise S3Error("NoSuchBucketPolicy", BucketName=bucket)
        elif method == "GET" and sub == ["uploads"]:
            body.read_all()
            store.require_bucket(bucket)
            self.list_uploads(bucket, params)
        elif method == "POST" and sub == ["delete"]:
            self.delete_objects(bucket, body)
        else:
            raise S3Error("NotImplemented", BucketName=bucket)

    def object_op(self, bucket: str, key: str, params: dict[str, str], body: Body) -> None:
        method = self.command
        sub = [name for name in params if name in OBJECT_SUBRESOURCES]
        if method in ("GET", "HEAD") and not sub:
            body.read_all()
            self.get_object(bucket, key, params)
        elif method == "PUT" and not sub and "partNumber" not in params:
            if self.headers.get("x-amz-copy-source"):
                self.copy_object(bucket, key, body)
            else:
                self.put_object(bucket, key, body)
        elif method == "PUT" and sub == ["uploadId"] and "partNumber" in params:
            self.upload_part(bucket, key, params, body)
        elif method == "DELETE" and not sub:
            body.read_all()
            self.store.delete(bucket, key)
            self.send(204, content_type=None)
        elif method == "POST" and sub == ["uploads"]:
            body.read_all()
            self.create_upload(bucket, key)
        elif method == "POST" and sub == ["uploadId"]:
            self.complete_upload(bucket, key, params["uploadId"], body)
        elif method == "DELETE" and sub == ["uploadId"]:
            body.read_all()
            self.abort_upload(bucket, key, params["uploadId"])
        elif method == "GET" and sub == ["uploadId"]:
            body.read_all()
            self.list_parts(bucket, key, params["uploadId"])
        else:
            raise S3Error("NotImplemented", BucketName=bucket, Key=key)

    # ----- objects

    def stored_headers(self) -> dict[str, str]:
        result = {}
        for name, value in self.headers.items():
            lname = name.lower()
            if lname.startswith("x-amz-meta-"):
                result[lname] = value
            elif lname in STORED_HEADERS:
                if lname == "content-encoding":
                    value = ",".join(v.strip() for v in value.split(",") if v.strip() != "aws-chunked")
                    if not value:
                        continue
                result[lname] = value
        result.setdefault("content-type", "application/octet-stream")
        return result

    def receive_to_temp(self, body: Body) -> tuple[str, int, str]:
        fd, tmp_path = self.store.temp_file()
        try:
            size, md5_hex, md5_b64 = body.to_file(fd)
            content_md5 = self.headers.get("Content-MD5")
            if content_md5 is not None:
                try:
                    base64.b64decode(content_md5, validate=True)
                except binascii.Error:
                    raise S3Error("InvalidDigest") from None
                if content_md5 != md5_b64:
                    raise S3Error("BadDigest")
        except BaseException:
            try:
                os.unlink(tmp_path)
            except FileNotFoundError:
                pass
            raise
        return tmp_path, size, md5_hex

    def put_object(self, bucket: str, key: str, body: Body) -> None:
        validate_key(key)
        self.store.require_bucket(bucket)
        tmp_path, size, md5_hex = self.receive_to_temp(body)
        try:
            info = self.store.put(bucket, key, tmp_path, size, md5_hex, self.stored_headers())
        finally:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
        self.send(200, headers={"ETag": f'"{info.etag}"'})

    def copy_object(self, bucket: str, key: str, body: Body) -> None:
        body.read_all()
        validate_key(key)
        source = unquote(self.headers["x-amz-copy-source"].split("?", 1)[0]).lstrip("/")
        src_bucket, _, src_key = source.partition("/")
        if not src_bucket or not src_key:
            raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
        self.store.require_bucket(bucket)
        with self.store.lock:
            info = self.store.stat(src_bucket, src_key)
            self.check_preconditions(info, prefix="x-amz-copy-source-")
            directive = self.headers.get("x-amz-metadata-directive", "COPY").upper()
            headers = self.stored_headers() if directive == "REPLACE" else dict(info.headers)
            if (src_bucket, src_key) == (bucket, key) and directive != "REPLACE":
                raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
            fd, tmp_path = self.store.temp_file()
            with os.fdopen(fd, "wb") as out:
                if not info.is_dir_marker:
                    with open(info.path, "rb") as src:
                        shutil.copyfileobj(src, out, COPY_BUFFER)
            try:
                new = self.store.put(bucket, key, tmp_path, info.size, info.etag, headers)
            finally:
                if os.path.exists(tmp_path):
                    os.unlink(tmp_path)
        self.send(200, xml_doc("CopyObjectResult",
                               f"<LastModified>{iso8601(new.mtime)}</LastModified>"
                               f"<ETag>&quot;{new.etag}&quot;</ETag>"))

    def check_preconditions(self, info: ObjectInfo, prefix: str = "") -> bool:
        """Apply If-Match and friends; return False when the answer is 304 Not Modified."""
        etag = f'"{info.etag}"'
        if_match = self.headers.get(prefix + "if-match")
        if if_match and if_match.strip() not in ("*", etag, info.etag):
            raise S3Error("PreconditionFailed")
        unmodified = self.headers.get(prefix + "if-unmodified-since")
        if unmodified and not if_match:
            parsed = email.utils.parsedate_tz(unmodified)
            if parsed and int(info.mtime) > email.utils.mktime_tz(parsed):
                raise S3Error("PreconditionFailed")
        if_none = self.headers.get(prefix + "if-none-match")
        if if_none and if_none.strip() in ("*", etag, info.etag):
            if prefix or self.command not in ("GET", "HEAD"):
                raise S3Error("PreconditionFailed")
            return False
        modified = self.headers.get(prefix + "if-modified-since")
        if modified and not if_none:
            parsed = email.utils.parsedate_tz(modified)
            if parsed and int(info.mtime) <= email.utils.mktime_tz(parsed):
                if prefix:
                    raise S3Error("PreconditionFailed")
                return False
        return True

    def get_object(self, bucket: str, key: str, params: dict[str, str]) -> None:
        with self.store.lock:
            info = self.store.stat(bucket, key)
            handle = None if info.is_dir_marker else open(info.path, "rb")
        try:
            headers = {
                "ETag": f'"{info.etag}"',
                "Last-Modified": http_date(info.mtime),
            }
            for name, value in info.headers.items():
                headers["-".join(p.capitalize() for p in name.split("-")) if not name.startswith("x-amz-meta-") else name] = value
            headers["Content-Type"] = info.content_type
            overrides = {"response-content-type": "Content-Type", "response-content-disposition": "Content-Disposition",
                         "response-cache-control": "Cache-Control", "response-content-encoding": "Content-Encoding",
                         "response-content-language": "Content-Language", "response-expires": "Expires"}
            for param, header in overrides.items():
                if param in params:
                    headers[header] = params[param]
            if not self.check_preconditions(info):
                self.send(304, headers={k: v for k, v in headers.items() if k in ("ETag", "Last-Modified")},
                          content_type=None)
                return
            start, end, status = 0, info.size - 1, 200
            range_header = self.headers.get("Range")
            if range_header and info.size >= 0:
                parsed = self.parse_range(range_header, info.size)
                if parsed is not None:
                    start, end = parsed
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
            length = max(0, end - start + 1)
            headers["Content-Length"] = str(length)
            self.send(status, headers=headers, content_type=None)
            if self.command == "HEAD" or handle is None or length == 0:
                return
            handle.seek(start)
            left = length
            while left > 0:
                data = handle.read(min(COPY_BUFFER, left))
                if not data:
                    break
                self.wfile.write(data)
                left -= len(data)
        finally:
            if handle is not None:
                handle.close()

    @staticmethod
    def parse_range(value: str, size: int) -> tuple[int, int] | None:
        match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
        if not match or (not match.group(1) and not match.group(2)):
            return None  # ignored, like S3 does for ranges it cannot parse
        first, last = match.groups()
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            if start >= size or (last and int(last) < start):
                raise S3Error("InvalidRange")
        else:
            suffix = int(last)
            if suffix == 0:
                raise S3Error("InvalidRange")
            start, end = max(0, size - suffix), size - 1
        return start, end

    def delete_objects(self, bucket: str, body: Body) -> None:
        data = body.read_all()
        self.store.require_bucket(bucket)
        root = parse_xml(data)
        quiet = (child_text(root, "Quiet") or "").strip().lower() == "true"
        results = []
        for obj in children(root, "Object"):
            key = child_text(obj, "Key") or ""
            try:
                self.store.delete(bucket, key)
                if not quiet:
                    results.append(f"<Deleted><Key>{esc(key)}</Key></Deleted>")
            except S3Error as error:
                results.append(f"<Error><Key>{esc(key)}</Key><Code>{esc(error.code)}</Code>"
                               f"<Message>{esc(error.message)}</Message></Error>")
        self.send(200, xml_doc("DeleteResult", "".join(results)))

    # ----- listing

    def list_objects(self, bucket: str, params: dict[str, str]) -> None:
        v2 = params.get("list-type") == "2"
        prefix = params.get("prefix", "")
        delimiter = params.get("delimiter", "")
        encoding = params.get("encoding-type", "")
        try:
            max_keys = min(1000, int(params.get("max-keys", "1000")))
        except ValueError:
            raise S3Error("InvalidArgument", "Argument maxKeys must be an integer between 0 and 2147483647") from None
        if max_keys < 0:
            raise S3Error("InvalidArgument", "Argument maxKeys must be an integer between 0 and 2147483647")
        if v2:
            token = params.get("continuation-token")
            if token is not None:
                try:
                    marker = base64.urlsafe_b64decode(token.encode()).decode("utf-8", "surrogateescape")
                except (binascii.Error, ValueError):
                    raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None
            else:
                marker = params.get("start-after", "")
        else:
            marker = params.get("marker", "")

        def enc(value: str) -> str:
            return esc(quote(value, safe="/") if encoding == "url" else value)

        entries: list[tuple[str, str | None]] = []  # (name, None) for a prefix, (key, key) for an object
        truncated = False
        last_prefix = None
        for key in self.store.sorted_keys(bucket, prefix):
            if key <= marker:
                continue
            rest = key[len(prefix):]
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if common == last_prefix or common <= marker:
                    continue
                item: tuple[str, str | None] = (common, None)
                last_prefix = common
            else:
                item = (key, key)
            if len(entries) >= max_keys:
                truncated = True
                break
            entries.append(item)

        parts = [f"<Name>{esc(bucket)}</Name><Prefix>{enc(prefix)}</Prefix>"]
        if v2:
            if "continuation-token" in params:
                parts.append(f"<ContinuationToken>{esc(params['continuation-token'])}</ContinuationToken>")
            if "start-after" in params:
                parts.append(f"<StartAfter>{enc(params['start-after'])}</StartAfter>")
            parts.append(f"<KeyCount>{len(entries)}</KeyCount>")
        else:
            parts.append(f"<Marker>{enc(marker)}</Marker>")
        parts.append(f"<MaxKeys>{max_keys}</MaxKeys>")
        if delimiter:
            parts.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
        if encoding:
            parts.append(f"<EncodingType>{esc(encoding)}</EncodingType>")
        parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        if truncated and entries:
            last = entries[-1][0]
            if v2:
                token = base64.urlsafe_b64encode(last.encode("utf-8", "surrogateescape")).decode()
                parts.append(f"<NextContinuationToken>{token}</NextContinuationToken>")
            else:
                parts.append(f"<NextMarker>{enc(last)}</NextMarker>")
        fetch_owner = not v2 or params.get("fetch-owner") == "true"
        owner = f"<Owner><ID>{OWNER_ID}</ID><DisplayName>minio</DisplayName></Owner>" if fetch_owner else ""
        for name, key in entries:
            if key is None:
                continue
            try:
                info = self.store.stat(bucket, key)
            except S3Error:
                continue  # deleted meanwhile
            parts.append(f"<Contents><Key>{enc(key)}</Key><LastModified>{iso8601(info.mtime)}</LastModified>"
                         f"<ETag>&quot;{info.etag}&quot;</ETag><Size>{info.size}</Size>{owner}"
                         f"<StorageClass>STANDARD</StorageClass></Contents>")
        for name, key in entries:
            if key is None:
                parts.append(f"<CommonPrefixes><Prefix>{enc(name)}</Prefix></CommonPrefixes>")
        self.send(200, xml_doc("ListBucketResult", "".join(parts)))

    # ----- multipart uploads

    def create_upload(self, bucket: str, key: str) -> None:
        validate_key(key)
        self.store.require_bucket(bucket)
        upload_id = str(uuid.uuid4())
        directory = self.store.upload_dir(upload_id)
        os.makedirs(directory)
        self.store.write_json(os.path.join(directory, "upload.json"),
                              {"bucket": bucket, "key": key, "headers": self.stored_headers(),
                               "initiated": time.time()})
        self.send(200, xml_doc("InitiateMultipartUploadResult",
                               f"<Bucket>{esc(bucket)}</Bucket><Key>{esc(key)}</Key>"
                               f"<UploadId>{upload_id}</UploadId>"))

    def upload_part(self, bucket: str, key: str, params: dict[str, str], body: Body) -> None:
        if self.headers.get("x-amz-copy-source"):
            raise S3Error("NotImplemented", "UploadPartCopy is not implemented by this stand-in.")
        try:
            number = int(params["partNumber"])
        except ValueError:
            raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive") from None
        if not 1 <= number <= 10000:
            raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
        self.store.require_bucket(bucket)
        self.store.upload_info(bucket, key, params["uploadId"])
        directory = self.store.upload_dir(params["uploadId"])
        tmp_path, size, md5_hex = self.receive_to_temp(body)
        os.replace(tmp_path, os.path.join(directory, f"part.{number}"))
        self.store.write_json(os.path.join(directory, f"part.{number}.json"),
                              {"etag": md5_hex, "size": size, "mtime": time.time()})
        self.send(200, headers={"ETag": f'"{md5_hex}"'})

    def list_parts(self, bucket: str, key: str, upload_id: str) -> None:
        self.store.require_bucket(bucket)
        self.store.upload_info(bucket, key, upload_id)
        directory = self.store.upload_dir(upload_id)
        parts = []
        numbers = sorted(int(name[5:-5]) for name in os.listdir(directory)
                         if name.startswith("part.") and name.endswith(".json"))
        for number in numbers:
            meta = self.store.read_json(os.path.join(directory, f"part.{number}.json")) or {}
            parts.append(f"<Part><PartNumber>{number}</PartNumber><LastModified>{iso8601(meta.get('mtime', 0))}"
                         f"</LastModified><ETag>&quot;{meta.get('etag', '')}&quot;</ETag>"
                         f"<Size>{meta.get('size', 0)}</Size></Part>")
        self.send(200, xml_doc("ListPartsResult",
                               f"<Bucket>{esc(bucket)}</Bucket><Key>{esc(key)}</Key><UploadId>{upload_id}</UploadId>"
                               f"<StorageClass>STANDARD</StorageClass><PartNumberMarker>0</PartNumberMarker>"
                               f"<MaxParts>10000</MaxParts><IsTruncated>false</IsTruncated>{''.join(parts)}"))

    def list_uploads(self, bucket: str, params: dict[str, str]) -> None:
        prefix = params.get("prefix", "")
        uploads = []
        for upload_id in sorted(os.listdir(self.store.multipart)):
            info = self.store.read_json(os.path.join(self.store.multipart, upload_id, "upload.json"))
            if info and info.get("bucket") == bucket and info.get("key", "").startswith(prefix):
                uploads.append((info["key"], upload_id, info.get("initiated", 0)))
        items = "".join(f"<Upload><Key>{esc(k)}</Key><UploadId>{u}</UploadId><StorageClass>STANDARD</StorageClass>"
                        f"<Initiated>{iso8601(t)}</Initiated></Upload>" for k, u, t in sorted(uploads))
        self.send(200, xml_doc("ListMultipartUploadsResult",
                               f"<Bucket>{esc(bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
                               f"<Prefix>{esc(prefix)}</Prefix><MaxUploads>1000</MaxUploads>"
                               f"<IsTruncated>false</IsTruncated>{items}"))

    def complete_upload(self, bucket: str, key: str, upload_id: str, body: Body) -> None:
        data = body.read_all()
        self.store.require_bucket(bucket)
        info = self.store.upload_info(bucket, key, upload_id)
        directory = self.store.upload_dir(upload_id)
        root = parse_xml(data)
        requested = []
        for part in children(root, "Part"):
            number_text = child_text(part, "PartNumber")
            etag = (child_text(part, "ETag") or "").strip().strip('"')
            if not number_text or not number_text.strip().isdigit():
                raise S3Error("MalformedXML")
            requested.append((int(number_text), etag))
        if not requested:
            raise S3Error("MalformedXML")
        numbers = [n for n, _ in requested]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise S3Error("InvalidPartOrder")
        metas = []
        for index, (number, etag) in enumerate(requested):
            meta = self.store.read_json(os.path.join(directory, f"part.{number}.json"))
            if meta is None or meta.get("etag") != etag:
                raise S3Error("InvalidPart")
            if index < len(requested) - 1 and meta["size"] < MIN_PART_SIZE:
                raise S3Error("EntityTooSmall")
            metas.append((number, meta))
        fd, tmp_path = self.store.temp_file()
        size = 0
        digests = b""
        with os.fdopen(fd, "wb") as out:
            for number, meta in metas:
                with open(os.path.join(directory, f"part.{number}"), "rb") as part_file:
                    shutil.copyfileobj(part_file, out, COPY_BUFFER)
                size += meta["size"]
                digests += bytes.fromhex(meta["etag"])
        etag = f"{hashlib.md5(digests).hexdigest()}-{len(metas)}"
        try:
            self.store.put(bucket, key, tmp_path, size, etag, info.get("headers", {}))
        finally:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
        shutil.rmtree(directory, ignore_errors=True)
        host = self.headers.get("Host", "localhost")
        self.send(200, xml_doc("CompleteMultipartUploadResult",
                               f"<Location>http://{esc(host)}/{esc(bucket)}/{esc(key)}</Location>"
                               f"<Bucket>{esc(bucket)}</Bucket><Key>{esc(key)}</Key>"
                               f"<ETag>&quot;{etag}&quot;</ETag>"))

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.store.require_bucket(bucket)
        self.store.upload_info(bucket, key, upload_id)
        shutil.rmtree(self.store.upload_dir(upload_id), ignore_errors=True)
        self.send(204, content_type=None)


CONSOLE_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>MinIO Console</title></head>
<body><h1>MinIO Console</h1><p>Console placeholder of the MinIO stand-in; use the S3 API.</p></body></html>
"""


class ConsoleHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MinIO Console"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass

    def _page(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            self.rfile.read(int(length))
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(CONSOLE_PAGE)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(CONSOLE_PAGE)

    do_GET = do_HEAD = do_POST = _page


# ------------------------------------------------------------------------------------------------
# Command line


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look the address up in DNS (getfqdn): not needed here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "minio", self.server_address[1]


class DualStackServer(Server):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def make_server(host: str, port: int, handler) -> ThreadingHTTPServer:
    """Listen on HOST, or on every IPv4 and IPv6 address (IPv4 only where IPv6 is off)."""
    if not host:
        try:
            return DualStackServer(("::", port), handler)
        except OSError:
            host = "0.0.0.0"
    return Server((host, port), handler)


def parse_address(value: str, option: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        fatal(f"Invalid {option} '{value}': expected [HOST]:PORT")
    return host.strip("[]"), int(port)


def fatal(message: str) -> None:
    sys.stderr.write(f"FATAL {message}\n")
    sys.stderr.flush()
    sys.exit(1)


def env_secret(name: str) -> str | None:
    """NAME from the environment, or the file named by NAME_FILE (under /run/secrets/ when
    relative), as the official image reads Docker secrets."""
    if name in os.environ:
        return os.environ[name]
    file_name = os.environ.get(name + "_FILE")
    if file_name:
        path = file_name if os.path.isabs(file_name) else os.path.join("/run/secrets", file_name)
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError:
            return None
    return None


def load_credentials() -> tuple[str, str]:
    user, password = env_secret("MINIO_ROOT_USER"), env_secret("MINIO_ROOT_PASSWORD")
    if user is None and password is not None:
        fatal("Unable to start MinIO: Missing credential environment variable, \"MINIO_ROOT_USER\"")
    if user is not None and password is None:
        fatal("Unable to start MinIO: Missing credential environment variable, \"MINIO_ROOT_PASSWORD\"")
    if user is None:
        user, password = os.environ.get("MINIO_ACCESS_KEY"), os.environ.get("MINIO_SECRET_KEY")
    if not user or not password:
        print("WARNING: Detected default credentials 'minioadmin:minioadmin', we recommend that you "
              "change these values with 'MINIO_ROOT_USER' and 'MINIO_ROOT_PASSWORD' environment variables")
        return "minioadmin", "minioadmin"
    if len(user) < 3:
        fatal("Unable to validate credentials inherited from the shell environment: Invalid credentials: "
              "access key length should be at least 3 characters (MINIO_ROOT_USER)")
    if len(password) < 8:
        fatal("Unable to validate credentials inherited from the shell environment: Invalid credentials: "
              "secret key length should be at least 8 characters (MINIO_ROOT_PASSWORD)")
    if "=" in user or "," in user:
        fatal("Unable to validate credentials inherited from the shell environment: "
              "access key contains one of reserved characters '=' or ','")
    return user, password


USAGE = """NAME:
  minio - High Performance Object Storage (stand-in)

USAGE:
  minio server [--address [HOST]:PORT] [--console-address [HOST]:PORT] DIR
"""


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("--version", "-v", "version"):
        print(f"minio version {VERSION} (stand-in)")
        return 0
    if not argv or argv[0] != "server":
        sys.stderr.write(USAGE)
        return 1
    args = argv[1:]
    address, console = ":9000", None
    certs_dir = os.path.join(os.path.expanduser("~"), ".minio", "certs")
    dirs = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if name in ("--address", "--console-address", "--certs-dir", "-S"):
            if eq:
                value = inline
            else:
                i += 1
                if i >= len(args):
                    fatal(f"flag needs an argument: {name}")
                value = args[i]
            if name == "--address":
                address = value
            elif name == "--console-address":
                console = value
            else:
                certs_dir = value
        elif arg in ("--quiet", "--anonymous", "--json"):
            pass
        elif arg.startswith("-"):
            fatal(f"flag provided but not defined: {arg}")
        else:
            dirs.append(arg)
        i += 1
    if len(dirs) != 1:
        fatal("this stand-in serves exactly one directory: minio server DIR")
    api_host, api_port = parse_address(address, "--address")
    console_host, console_port = parse_address(console, "--console-address") if console else ("", 0)

    # As MinIO: the certificates directory (with its CAs) is created at every start.
    try:
        os.makedirs(os.path.join(certs_dir, "CAs"), exist_ok=True)
    except OSError as exc:
        fatal(f"Unable to create certs CA directory at {os.path.join(certs_dir, 'CAs')}: {exc}")
    user, password = load_credentials()
    region = os.environ.get("MINIO_REGION") or os.environ.get("MINIO_SITE_REGION") or ""
    try:
        os.makedirs(dirs[0], exist_ok=True)
        store = Store(dirs[0])
    except OSError as exc:
        fatal(f"Unable to use the drive {dirs[0]}: {exc}")

    S3Handler.store = store
    S3Handler.auth = Authenticator(user, password, region, Iam(store))
    S3Handler.trace = os.environ.get("MINIO_STANDIN_TRACE", "") in ("1", "on", "true")
    api = make_server(api_host, api_port, S3Handler)
    servers = [api]
    if console:
        if console_port == 0:
            console_port = 9001
        servers.append(make_server(console_host, console_port, ConsoleHandler))

    stop = threading.Event()

    def on_signal(signum, frame) -> None:  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()

    print(f"MinIO Object Storage Server (stand-in)\nVersion: {VERSION}\n"
          f"API: http://{socket.gethostname()}:{api_port}  http://127.0.0.1:{api_port}")
    if console:
        print(f"WebUI: http://{socket.gethostname()}:{console_port} http://127.0.0.1:{console_port}")
    print(f"Drive: {store.root}", flush=True)
    while not stop.wait(3600):
        pass
    print("Exiting on signal", flush=True)
    for server in servers:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
