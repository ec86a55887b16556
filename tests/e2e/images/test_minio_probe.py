"""The MinIO stand-in and the VoiceGrow probe on a real Docker engine.

The MinIO stand-in must serve what the program and its users rely on: the S3 API with the root
credentials (boto3, rclone), refusals of wrong credentials, the health endpoints, the console
port, `mc` run with `docker exec`, and objects that outlive the container. The probe must report
whether MySQL, Redis and MinIO accept the credentials it was given, and echo WebSocket messages.

S3 and WebSocket clients run in throwaway containers of the images themselves (they carry boto3
and websockets), on the same user-defined network; rclone runs on this machine (Debian's package).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")
import docker.errors  # noqa: E402
import docker.types  # noqa: E402
from components.rendering.voicegrow import MINIO_APP_USER, minio_app_user_command  # noqa: E402
from tests.e2e.container_exec import run_in  # noqa: E402
from tests.e2e.host_networks import changing_networks  # noqa: E402

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
MINIO_IMAGE = "e2e.local/minio:stand-in"
PROBE_IMAGE = "e2e.local/voicegrow-probe:1"
MYSQL_IMAGE = "e2e.local/mysql:8.0"
REDIS_IMAGE = "e2e.local/redis:7"
MINIO_PYTHON = "/usr/lib/minio-standin/venv/bin/python3"

ROOT_USER = "voicegrow-admin"
ROOT_PASSWORD = "Root-Secret-0123456789"
MYSQL_PASSWORD = "Mysql-Secret-0123456789"
REDIS_PASSWORD = "Redis-Secret-0123456789"
BUCKET = "voicegrow"
MC_HOST = f"http://{ROOT_USER}:{ROOT_PASSWORD}@127.0.0.1:9000"


# ------------------------------------------------------------------------------------------------
# Engine, images, cleanup


def has_image(engine, reference: str) -> bool:
    try:
        engine.images.get(reference)
        return True
    except docker.errors.ImageNotFound:
        return False


def require_image(engine, reference: str, name: str) -> None:
    if not has_image(engine, reference):
        pytest.skip(f"image {reference} missing: build it with tests/e2e/images/build.sh {name}")


class Resources:
    """Containers, volumes and networks made by one module, removed at its end."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.prefix = f"e2e-mp-{uuid.uuid4().hex[:8]}"
        self.containers: list = []
        self.volumes: list[str] = []
        self.networks: list = []

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def network(self, what: str):
        with changing_networks():
            network = self.engine.networks.create(self.name(what), driver="bridge")
        self.networks.append(network)
        return network

    def volume(self, what: str) -> str:
        name = self.name(what)
        self.engine.volumes.create(name)
        self.volumes.append(name)
        return name

    def container(self, image: str, what: str, network=None, aliases: list[str] | None = None,
                  start: bool = True, **kwargs):
        if network is not None:
            # Only on the stack's network, under its aliases, as the program attaches containers.
            kwargs["network"] = network.name
            kwargs["networking_config"] = {network.name: docker.types.EndpointConfig(
                self.engine.api._version, aliases=aliases or [])}
        container = self.engine.containers.create(image, name=self.name(what), hostname=what, **kwargs)
        self.containers.append(container)
        if start:
            container.start()
            container.reload()
        return container

    def close(self) -> None:
        for container in reversed(self.containers):
            try:
                container.remove(force=True, v=True)  # with its anonymous volumes
            except docker.errors.NotFound:
                pass
        for network in self.networks:
            try:
                with changing_networks():
                    network.remove()
            except docker.errors.NotFound:
                pass
        for name in self.volumes:
            try:
                self.engine.volumes.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass


@pytest.fixture(scope="module")
def resources(engine) -> Iterator[Resources]:
    made = Resources(engine)
    yield made
    made.close()


@pytest.fixture(scope="module")
def network(resources):
    return resources.network("net")


def host_port(container, port: str) -> int:
    container.reload()
    return int(container.ports[port][0]["HostPort"])


def wait_for(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def container_logs(container) -> str:
    try:
        return container.logs(tail=40).decode("utf-8", "replace")
    except docker.errors.APIError:
        return ""


def run_python(engine, image: str, python: str, script: str, network, env: dict | None = None) -> dict:
    """Run a Python script in a throwaway container on the network; return its last JSON line."""
    container = engine.containers.run(
        image, entrypoint=[python, "-c", textwrap.dedent(script)], environment=env or {},
        network=network.name, detach=True,
    )
    try:
        status = container.wait(timeout=300)["StatusCode"]
        output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        # With v=True: the image declares VOLUME /data, whose anonymous volume goes too.
        container.remove(force=True, v=True)
    if status != 0:
        raise AssertionError(f"client script failed with status {status}: {output[-2000:]}")
    return json.loads(output.strip().splitlines()[-1])


def s3_script(engine, network, body: str, **env: str) -> dict:
    """boto3 in the MinIO image, with `s3(secret=..., user=...)` at hand, against minio:9000."""
    prelude = """
        import json, os, boto3
        from botocore.config import Config
        from botocore.exceptions import ClientError
        def s3(user=os.environ["ROOT_USER"], secret=os.environ["ROOT_PASSWORD"], endpoint="http://minio:9000", **config):
            return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=user, aws_secret_access_key=secret,
                                region_name="us-east-1", config=Config(retries={"max_attempts": 1}, **config))
        def code(call):
            try:
                call()
            except ClientError as exc:
                return [exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]]
            return [200, None]
    """
    env = {"ROOT_USER": ROOT_USER, "ROOT_PASSWORD": ROOT_PASSWORD, **env}
    return run_python(engine, MINIO_IMAGE, MINIO_PYTHON, textwrap.dedent(prelude) + textwrap.dedent(body),
                      network, env)


def exec_in(container, argv: list[str], env: dict | None = None) -> tuple[int, str, str]:
    result = run_in(container, argv, environment=env, apart=True)
    return result.exit_code, result.stdout, result.stderr


# ------------------------------------------------------------------------------------------------
# MinIO stand-in


def start_minio(resources, network, what: str, volume: str, **kwargs):
    """The container as the program declares it: command, root credentials, /data volume."""
    container = resources.container(
        MINIO_IMAGE, what, network=network, aliases=["minio"],
        command=["server", "/data", "--console-address", ":9001"],
        environment={"MINIO_ROOT_USER": ROOT_USER, "MINIO_ROOT_PASSWORD": ROOT_PASSWORD},
        volumes={volume: {"bind": "/data", "mode": "rw"}},
        ports={"9000/tcp": ("127.0.0.1", None), "9001/tcp": ("127.0.0.1", None)},
        **kwargs,
    )
    port = host_port(container, "9000/tcp")
    wait_for(lambda: http_get(f"http://127.0.0.1:{port}/minio/health/live", timeout=2)[0] == 200,
             30, f"MinIO stand-in health ({container_logs(container)})")
    return container


@pytest.fixture(scope="module")
def minio(engine, resources, network):
    require_image(engine, MINIO_IMAGE, "minio")
    return start_minio(resources, network, "minio", resources.volume("minio-data"))


@pytest.fixture(scope="module")
def bucket(minio) -> str:
    code, out, err = exec_in(minio, ["mc", "mb", "--ignore-existing", f"local/{BUCKET}"], {"MC_HOST_local": MC_HOST})
    assert code == 0, err
    return BUCKET


def test_health_endpoints_answer_without_credentials(minio):
    port = host_port(minio, "9000/tcp")
    assert http_get(f"http://127.0.0.1:{port}/minio/health/live")[0] == 200
    assert http_get(f"http://127.0.0.1:{port}/minio/health/ready")[0] == 200


def test_programs_health_check_command_succeeds_inside_the_container(minio):
    code, _, err = exec_in(minio, ["curl", "-f", "http://localhost:9000/minio/health/live"])
    assert code == 0, err


def test_console_port_answers_200(minio):
    status, body = http_get(f"http://127.0.0.1:{host_port(minio, '9001/tcp')}/")
    assert status == 200 and b"MinIO" in body


def test_anonymous_request_is_refused(minio):
    status, body = http_get(f"http://127.0.0.1:{host_port(minio, '9000/tcp')}/")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


def test_boto3_with_root_credentials_creates_bucket_and_round_trips_an_object(engine, network, minio):
    result = s3_script(engine, network, """
        client = s3()
        client.create_bucket(Bucket="roundtrip")
        client.put_object(Bucket="roundtrip", Key="audio/hello world.txt", Body=b"hello", ContentType="text/plain",
                          Metadata={"speaker": "xiaomi"})
        got = client.get_object(Bucket="roundtrip", Key="audio/hello world.txt")
        listed = client.list_objects_v2(Bucket="roundtrip", Prefix="audio/")
        print(json.dumps({"body": got["Body"].read().decode(), "type": got["ContentType"], "meta": got["Metadata"],
                          "keys": [o["Key"] for o in listed["Contents"]],
                          "buckets": [b["Name"] for b in client.list_buckets()["Buckets"]]}))
    """)
    assert result == {"body": "hello", "type": "text/plain", "meta": {"speaker": "xiaomi"},
                      "keys": ["audio/hello world.txt"], "buckets": result["buckets"]}
    assert "roundtrip" in result["buckets"]


def test_creating_an_existing_bucket_answers_409_bucket_already_owned_by_you(engine, network, bucket):
    result = s3_script(engine, network, f"""
        print(json.dumps(code(lambda: s3().create_bucket(Bucket="{bucket}"))))
    """)
    assert result == [409, "BucketAlreadyOwnedByYou"]


def test_wrong_secret_is_refused_with_403_signature_does_not_match(engine, network, minio):
    result = s3_script(engine, network, """
        print(json.dumps(code(lambda: s3(secret="not-the-password").list_buckets())))
    """)
    assert result == [403, "SignatureDoesNotMatch"]


def test_unknown_access_key_is_refused_with_403_invalid_access_key_id(engine, network, minio):
    result = s3_script(engine, network, """
        print(json.dumps(code(lambda: s3(user="someone-else").list_buckets())))
    """)
    assert result == [403, "InvalidAccessKeyId"]


def test_listing_pages_with_continuation_and_groups_by_delimiter(engine, network, bucket):
    result = s3_script(engine, network, f"""
        client = s3()
        for i in range(7):
            client.put_object(Bucket="{bucket}", Key=f"pages/{{i}}.txt", Body=b"x")
        client.put_object(Bucket="{bucket}", Key="pages/sub/deep.txt", Body=b"x")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket="{bucket}", Prefix="pages/",
                                                                  PaginationConfig={{"PageSize": 3}})
        keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
        top = client.list_objects_v2(Bucket="{bucket}", Prefix="pages/", Delimiter="/")
        print(json.dumps({{"keys": keys, "prefixes": [p["Prefix"] for p in top.get("CommonPrefixes", [])],
                          "top": top["KeyCount"]}}))
    """)
    assert result["keys"] == [f"pages/{i}.txt" for i in range(7)] + ["pages/sub/deep.txt"]
    assert result["prefixes"] == ["pages/sub/"]
    assert result["top"] == 8


def test_copy_delete_and_presigned_urls_work(engine, network, bucket):
    result = s3_script(engine, network, f"""
        import urllib.request
        client = s3()
        client.put_object(Bucket="{bucket}", Key="copy/source", Body=b"payload")
        client.copy_object(Bucket="{bucket}", Key="copy/target", CopySource={{"Bucket": "{bucket}", "Key": "copy/source"}})
        copied = client.get_object(Bucket="{bucket}", Key="copy/target")["Body"].read().decode()
        urls = [c.generate_presigned_url("get_object", Params={{"Bucket": "{bucket}", "Key": "copy/target"}}, ExpiresIn=60)
                for c in (client, s3(signature_version="s3v4"))]
        presigned = [urllib.request.urlopen(u).read().decode() for u in urls]
        client.delete_object(Bucket="{bucket}", Key="copy/source")
        print(json.dumps({{"copied": copied, "presigned": presigned,
                          "deleted": code(lambda: client.head_object(Bucket="{bucket}", Key="copy/source"))}}))
    """)
    assert result == {"copied": "payload", "presigned": ["payload", "payload"], "deleted": [404, "404"]}


def test_multipart_upload_reassembles_the_object(engine, network, bucket):
    result = s3_script(engine, network, f"""
        import hashlib, io, os
        data = os.urandom(12 * 1024 * 1024)
        client = s3()
        client.upload_fileobj(io.BytesIO(data), "{bucket}", "multipart/big.bin",
                              Config=__import__("boto3.s3.transfer").s3.transfer.TransferConfig(
                                  multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
        got = client.get_object(Bucket="{bucket}", Key="multipart/big.bin")
        print(json.dumps({{"same": hashlib.sha256(got["Body"].read()).hexdigest() == hashlib.sha256(data).hexdigest(),
                          "etag": got["ETag"]}}))
    """)
    assert result["same"] is True
    assert result["etag"].endswith('-3"')


STREAMING_UPLOAD = """
    import hashlib, urllib.request, urllib.error, datetime
    from botocore.auth import S3SigV4Auth, EMPTY_SHA256_HASH
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class Seed(S3SigV4Auth):
        def payload(self, request):
            return "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"

    def upload(chunks, tamper):
        url = "http://minio:9000/{bucket}/streaming/object.bin"
        total = sum(len(c) for c in chunks)
        request = AWSRequest(method="PUT", url=url, headers={{
            "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(total)}})
        signer = Seed(Credentials(os.environ["ROOT_USER"], os.environ["ROOT_PASSWORD"]), "s3", "us-east-1")
        signer.add_auth(request)
        previous = request.headers["Authorization"].rsplit("Signature=", 1)[1]
        body = b""
        for chunk in chunks + [b""]:
            sts = "\\n".join(["AWS4-HMAC-SHA256-PAYLOAD", request.context["timestamp"], signer.credential_scope(request),
                              previous, EMPTY_SHA256_HASH, hashlib.sha256(chunk).hexdigest()])
            previous = signer.signature(sts, request)
            sent = chunk.replace(b"a", b"b") if tamper else chunk
            body += f"{{len(chunk):x}};chunk-signature={{previous}}\\r\\n".encode() + sent + b"\\r\\n"
        headers = dict(request.headers.items())
        put = urllib.request.Request(url, data=body, method="PUT", headers=headers)
        try:
            return urllib.request.urlopen(put).status
        except urllib.error.HTTPError as exc:
            return exc.code

    chunks = [b"a" * 65536, b"a" * 1000]
    good = upload(chunks, tamper=False)
    stored = s3().get_object(Bucket="{bucket}", Key="streaming/object.bin")["Body"].read() == b"".join(chunks)
    bad = upload(chunks, tamper=True)
    print(json.dumps({{"good": good, "stored": stored, "tampered": bad}}))
"""


def test_streaming_signed_upload_is_checked_chunk_by_chunk(engine, network, bucket):
    # The payload signing of Go clients (minio-go, the real mc) over plain HTTP.
    result = s3_script(engine, network, STREAMING_UPLOAD.format(bucket=bucket))
    assert result == {"good": 200, "stored": True, "tampered": 403}


def test_mc_mb_ignore_existing_succeeds_twice_and_the_bucket_exists(engine, network, minio):
    env = {"MC_HOST_local": MC_HOST}
    first = exec_in(minio, ["mc", "mb", "--ignore-existing", "local/from-mc"], env)
    second = exec_in(minio, ["mc", "mb", "--ignore-existing", "local/from-mc"], env)
    assert first[0] == 0 and second[0] == 0, (first, second)
    listed = s3_script(engine, network, """
        print(json.dumps([b["Name"] for b in s3().list_buckets()["Buckets"]]))
    """)
    assert "from-mc" in listed


def test_mc_mb_of_an_existing_bucket_without_ignore_existing_fails(minio, bucket):
    code, _, err = exec_in(minio, ["mc", "mb", f"local/{bucket}"], {"MC_HOST_local": MC_HOST})
    assert code == 1
    assert err.startswith("mc: <ERROR> Unable to make bucket") and "already own it" in err


def test_mc_ls_lists_a_bucket_and_fails_for_a_missing_one(minio, bucket):
    env = {"MC_HOST_local": MC_HOST}
    assert exec_in(minio, ["mc", "ls", f"local/{bucket}"], env)[0] == 0
    code, _, err = exec_in(minio, ["mc", "ls", "local/no-such-bucket"], env)
    assert code == 1 and "does not exist" in err


def test_mc_with_a_wrong_secret_fails(minio, bucket):
    code, _, err = exec_in(minio, ["mc", "ls", f"local/{bucket}"],
                           {"MC_HOST_local": f"http://{ROOT_USER}:wrong-secret@127.0.0.1:9000"})
    assert code == 1 and "signature" in err


def test_the_programs_bucket_user_uses_its_bucket_and_nothing_else(minio, bucket):
    root = {"MC_HOST_local": MC_HOST}
    assert exec_in(minio, ["mc", "mb", "--ignore-existing", "local/someone-elses"], root)[0] == 0
    secret = "App-Secret-0123456789"
    for _ in range(2):  # again, as a second deploy runs it: nothing left to change is no failure
        code, _, err = exec_in(minio, minio_app_user_command(bucket), {**root, "APP_SECRET_KEY": secret})
        assert code == 0, err
    app = {"MC_HOST_app": f"http://{MINIO_APP_USER}:{secret}@127.0.0.1:9000"}
    code, out, err = exec_in(minio, ["sh", "-c", f"echo written > /tmp/object && mc cp /tmp/object app/{bucket}/by-the-app && mc cat app/{bucket}/by-the-app"], app)
    assert (code, out.splitlines()[-1:]) == (0, ["written"]), err
    code, out, _ = exec_in(minio, ["mc", "ls", "app"], app)
    assert code == 0 and [line.split()[-1] for line in out.splitlines()] == [f"{bucket}/"]
    for refused in (["mc", "ls", "app/someone-elses"], ["mc", "mb", "app/its-own"], ["mc", "rb", f"app/{bucket}"]):
        code, _, err = exec_in(minio, refused, app)
        assert code == 1 and "Access Denied" in err, (refused, err)
    code, _, err = exec_in(minio, ["sh", "-c", "printf 'intruder-secret-1\\n' | mc admin user add app intruder"], app)
    assert code == 1 and "Access Denied" in err, err
    # A new secret key replaces the old one.
    assert exec_in(minio, minio_app_user_command(bucket), {**root, "APP_SECRET_KEY": "App-Secret-rotated-1"})[0] == 0
    assert exec_in(minio, ["mc", "ls", f"app/{bucket}"], app)[0] == 1
    assert exec_in(minio, ["mc", "ls", f"app/{bucket}"], {"MC_HOST_app": f"http://{MINIO_APP_USER}:App-Secret-rotated-1@127.0.0.1:9000"})[0] == 0


def test_mc_ready_reports_the_cluster_ready(minio):
    code, out, _ = exec_in(minio, ["mc", "ready", "local"], {"MC_HOST_local": MC_HOST})
    assert code == 0 and "is ready" in out


def test_server_refuses_a_root_password_shorter_than_8_characters(engine, resources, network):
    require_image(engine, MINIO_IMAGE, "minio")
    container = resources.container(MINIO_IMAGE, "short-password", network=network, command=["server", "/data"],
                                    environment={"MINIO_ROOT_USER": ROOT_USER, "MINIO_ROOT_PASSWORD": "short"})
    status = container.wait(timeout=30)
    assert status["StatusCode"] != 0
    assert "secret key length" in container_logs(container)


def test_objects_survive_container_replacement_on_the_same_volume(engine, resources):
    require_image(engine, MINIO_IMAGE, "minio")
    network = resources.network("replace")
    volume = resources.volume("replace-data")
    first = start_minio(resources, network, "minio-first", volume)
    before = s3_script(engine, network, """
        client = s3()
        client.create_bucket(Bucket="kept")
        etag = client.put_object(Bucket="kept", Key="dir/recording.wav", Body=b"RIFF" * 1000)["ETag"]
        print(json.dumps(etag))
    """)
    first.remove(force=True)
    start_minio(resources, network, "minio-second", volume)
    after = s3_script(engine, network, """
        got = s3().get_object(Bucket="kept", Key="dir/recording.wav")
        print(json.dumps([got["ETag"], got["Body"].read() == b"RIFF" * 1000]))
    """)
    assert after == [before, True]


@pytest.fixture(scope="module")
def rclone() -> str:
    path = shutil.which("rclone")
    if path is None:
        install = subprocess.run(["apt-get", "install", "-y", "-qq", "rclone"], capture_output=True, text=True,
                                 env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if install.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", "rclone"], capture_output=True, check=False,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        path = shutil.which("rclone")
    if path is None:
        pytest.skip("rclone is missing and Debian's package could not be installed")
    return path


def rclone_env(minio) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update({
        "RCLONE_CONFIG_STORE_TYPE": "s3",
        "RCLONE_CONFIG_STORE_PROVIDER": "Minio",
        "RCLONE_CONFIG_STORE_ENDPOINT": f"http://127.0.0.1:{host_port(minio, '9000/tcp')}",
        "RCLONE_CONFIG_STORE_ACCESS_KEY_ID": ROOT_USER,
        "RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY": ROOT_PASSWORD,
        "RCLONE_CONFIG_STORE_ENV_AUTH": "false",
        "RCLONE_CONFIG": "/dev/null",
    })
    return env


def run_rclone(rclone: str, env: dict, *args: str) -> str:
    result = subprocess.run([rclone, *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"rclone {' '.join(args)}: {result.stderr}"
    return result.stdout


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rclone_syncs_a_directory_to_the_bucket_and_back(rclone, minio, bucket, tmp_path):
    env = rclone_env(minio)
    source = tmp_path / "source"
    (source / "recordings" / "2025").mkdir(parents=True)
    (source / "a.txt").write_text("one")
    (source / "name with spaces & plus+.txt").write_text("two")
    (source / "recordings" / "2025" / "clip.bin").write_bytes(os.urandom(300_000))
    (source / "stale.txt").write_text("to be deleted")
    remote = f"store:{bucket}/backup"

    run_rclone(rclone, env, "sync", str(source), remote)
    (source / "stale.txt").unlink()
    (source / "a.txt").write_text("one, changed")
    run_rclone(rclone, env, "sync", str(source), remote)
    assert bucket in run_rclone(rclone, env, "lsd", "store:")

    restored = tmp_path / "restored"
    run_rclone(rclone, env, "sync", remote, str(restored))
    assert tree(restored) == tree(source)
    run_rclone(rclone, env, "check", str(source), remote)


# ------------------------------------------------------------------------------------------------
# VoiceGrow probe with MySQL (MariaDB stand-in), Redis and MinIO


def ensure_backend_images(engine) -> None:
    if has_image(engine, MYSQL_IMAGE) and has_image(engine, REDIS_IMAGE):
        return
    result = subprocess.run(["bash", str(HERE / "build.sh"), "mysql", "redis"], capture_output=True, text=True)
    if result.returncode != 0 or not (has_image(engine, MYSQL_IMAGE) and has_image(engine, REDIS_IMAGE)):
        pytest.skip(f"{MYSQL_IMAGE} or {REDIS_IMAGE} missing and build.sh could not build them: "
                    f"{result.stderr.strip()[-500:]}")


def redis_conf_archive(password: str) -> bytes:
    data = f"bind 0.0.0.0\nport 6379\nrequirepass {password}\nappendonly yes\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for directory in ("usr/local/etc", "usr/local/etc/redis"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        info = tarfile.TarInfo("usr/local/etc/redis/redis.conf")
        info.size, info.mode = len(data), 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def backends(engine, resources, network, minio, bucket) -> dict:
    ensure_backend_images(engine)
    require_image(engine, PROBE_IMAGE, "probe")
    mysql = resources.container(MYSQL_IMAGE, "mysql", network=network, aliases=["mysql"], environment={
        "MYSQL_ROOT_PASSWORD": "Root-" + MYSQL_PASSWORD, "MYSQL_DATABASE": "voicegrow",
        "MYSQL_USER": "voicegrow", "MYSQL_PASSWORD": MYSQL_PASSWORD,
    })
    redis = resources.container(REDIS_IMAGE, "redis", network=network, aliases=["redis"], start=False,
                                command=["redis-server", "/usr/local/etc/redis/redis.conf"])
    redis.put_archive("/", redis_conf_archive(REDIS_PASSWORD))
    redis.start()
    return {"mysql": mysql, "redis": redis, "minio": minio, "bucket": bucket}


def probe_environment(**overrides: str) -> dict[str, str]:
    """Exactly the variables the program passes to the VoiceGrow server."""
    env = {
        "SERVER_HOST": "0.0.0.0", "WS_PORT": "4399", "HTTP_PORT": "8000", "DEBUG": "false",
        "LOG_LEVEL": "INFO", "WORKERS": "1",
        "ASR_MODEL_SIZE": "small", "ASR_DEVICE": "cpu", "ASR_COMPUTE_TYPE": "int8",
        "TTS_BASE_URL": "http://ai-manager:8000", "TTS_API_KEY": "ak_tts_secret", "TTS_SECRET_KEY": "sk_tts_secret",
        "TTS_VOICE_ZH": "zh-CN-Neural2-C", "TTS_VOICE_EN": "en-US-Neural2-C", "TTS_SPEAKING_RATE": "0.9",
        "LLM_BASE_URL": "http://ai-manager:8000", "LLM_API_KEY": "ak_llm_secret", "LLM_SECRET_KEY": "sk_llm_secret",
        "LLM_MODEL": "gemini-2.0-flash-exp", "LLM_MAX_TOKENS": "300", "LLM_TEMPERATURE": "0.7",
        "MYSQL_HOST": "mysql", "MYSQL_PORT": "3306", "MYSQL_DATABASE": "voicegrow", "MYSQL_USER": "voicegrow",
        "MYSQL_PASSWORD": MYSQL_PASSWORD,
        "REDIS_HOST": "redis", "REDIS_PORT": "6379", "REDIS_PASSWORD": REDIS_PASSWORD,
        "MINIO_ENDPOINT": "minio:9000", "MINIO_ACCESS_KEY": ROOT_USER, "MINIO_SECRET_KEY": ROOT_PASSWORD,
        "MINIO_BUCKET": BUCKET, "MINIO_SECURE": "false",
    }
    env.update(overrides)
    return env


def start_probe(resources, network, what: str, env: dict[str, str]):
    container = resources.container(PROBE_IMAGE, what, network=network, aliases=[what], environment=env,
                                    ports={"8000/tcp": ("127.0.0.1", None)})
    port = host_port(container, "8000/tcp")
    wait_for(lambda: http_get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)[0] == 200, 30,
             f"probe health ({container_logs(container)})")
    return container, port


def detail(port: int) -> tuple[int, dict]:
    status, body = http_get(f"http://127.0.0.1:{port}/api/v1/health/detail", timeout=30)
    return status, json.loads(body)


@pytest.fixture(scope="module")
def probe(resources, network, backends):
    container, port = start_probe(resources, network, "voicegrow-server", probe_environment())
    # MySQL initialises its database on first start: wait until the probe reaches everything.
    wait_for(lambda: detail(port)[0] == 200, 180,
             f"all dependencies ok (mysql log: {container_logs(backends['mysql'])[-800:]})", interval=1)
    return container, port


def test_probe_health_answers_with_its_instance_name(probe):
    container, port = probe
    status, body = http_get(f"http://127.0.0.1:{port}/api/v1/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "instance": "voicegrow-server"}


def test_programs_health_check_command_succeeds_inside_the_probe(probe):
    code, _, err = exec_in(probe[0], ["curl", "-f", "http://localhost:8000/api/v1/health"])
    assert code == 0, err


def test_instance_endpoint_names_the_replica_that_answered(probe):
    status, body = http_get(f"http://127.0.0.1:{probe[1]}/api/v1/instance")
    assert status == 200 and json.loads(body) == {"instance": "voicegrow-server"}


def test_detail_reports_mysql_redis_and_minio_ok(probe):
    status, body = detail(probe[1])
    assert status == 200
    assert {name: body[name]["ok"] for name in ("mysql", "redis", "minio")} == {"mysql": True, "redis": True, "minio": True}
    assert body["redis"]["unauthenticated_ping_accepted"] is False
    assert body["instance"] == "voicegrow-server"


def test_detail_lists_the_environment_without_secret_values(probe):
    status, body = detail(probe[1])
    received = body["env"]
    assert set(probe_environment()) <= set(received)
    assert received["MYSQL_HOST"] == "mysql" and received["MINIO_BUCKET"] == BUCKET
    text = json.dumps(body)
    for secret in (MYSQL_PASSWORD, REDIS_PASSWORD, ROOT_PASSWORD, "ak_tts_secret", "sk_llm_secret"):
        assert secret not in text


@pytest.mark.parametrize(
    ("broken", "overrides"),
    [
        ("mysql", {"MYSQL_PASSWORD": "not-the-password"}),
        ("redis", {"REDIS_PASSWORD": "not-the-password"}),
        ("minio", {"MINIO_SECRET_KEY": "not-the-password"}),
    ],
)
def test_a_wrong_password_makes_only_that_dependency_fail_with_503(resources, network, probe, broken, overrides):
    _, port = start_probe(resources, network, f"probe-bad-{broken}", probe_environment(**overrides))
    status, body = detail(port)
    assert status == 503
    assert {name: body[name]["ok"] for name in ("mysql", "redis", "minio")} == {
        name: name != broken for name in ("mysql", "redis", "minio")}
    assert body[broken]["error"]


def test_redis_without_a_password_is_reported(resources, network, probe):
    # The server requires one: a probe given none must not be told "ok".
    _, port = start_probe(resources, network, "probe-no-redis-password", probe_environment(REDIS_PASSWORD=""))
    status, body = detail(port)
    assert status == 503 and body["redis"]["ok"] is False


def test_websocket_echoes_text_and_binary_messages(engine, network, probe):
    result = run_python(engine, PROBE_IMAGE, "python", """
        import json
        from websockets.sync.client import connect
        with connect("ws://voicegrow-server:4399/any/path") as ws:
            ws.send("hello"); text = ws.recv()
            ws.send("你好，小爱"); chinese = ws.recv()
            ws.send(b"\\x00\\x01audio"); binary = ws.recv()
        print(json.dumps({"text": text, "chinese": chinese, "binary": binary.hex()}))
    """, network)
    assert result == {"text": "hello", "chinese": "你好，小爱", "binary": b"\x00\x01audio".hex()}


def test_probe_logs_one_line_per_request(probe):
    container, port = probe
    http_get(f"http://127.0.0.1:{port}/api/v1/instance?marker=log-check")

    def lines() -> int:
        logs = container.logs().decode("utf-8", "replace")
        return sum("/api/v1/instance?marker=log-check" in line for line in logs.splitlines())

    # The probe logs after it answers, and the engine copies a container's output to its log
    # asynchronously: the line may come a moment after the answer.
    wait_for(lambda: lines() > 0, 10, "the request's log line")
    assert lines() == 1


def test_probe_listens_on_the_ports_named_by_its_environment(engine, resources, network, probe):
    container = resources.container(PROBE_IMAGE, "probe-ports", network=network, aliases=["probe-ports"],
                                    environment=probe_environment(HTTP_PORT="8080", WS_PORT="4400"))
    wait_for(lambda: exec_in(container, ["curl", "-fs", "http://localhost:8080/api/v1/health"])[0] == 0, 30,
             f"probe on port 8080 ({container_logs(container)})")
    result = run_python(engine, PROBE_IMAGE, "python", """
        import json
        from websockets.sync.client import connect
        with connect("ws://probe-ports:4400/") as ws:
            ws.send("ping"); print(json.dumps(ws.recv()))
    """, network)
    assert result == "ping"
    assert exec_in(container, ["curl", "-fs", "http://localhost:8000/api/v1/health"])[0] != 0
