"""Fixtures for the harness's own end-to-end tests: a tiny local image and a throwaway program."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import textwrap
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest

from .fixtures import deploy  # noqa: F401 - offered to the tests here

TINY_IMAGE = "e2e.local/harness-busybox:1"
BASE_IMAGE = "e2e.local/base:bookworm"


def _busybox_rootfs(busybox: Path) -> bytes:
    """A root filesystem of one static busybox and its applet links."""
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for directory, mode in (
            ("bin", 0o755),
            ("etc", 0o755),
            ("tmp", 0o1777),
            ("root", 0o700),
            ("usr", 0o755),
            ("var", 0o755),
        ):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            archive.addfile(info)
        archive.add(str(busybox), arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                archive.addfile(info)
        for name, content in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _is_static(binary: Path) -> bool:
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    return "not a dynamic executable" in (result.stdout + result.stderr)


@pytest.fixture(scope="session")
def tiny_image(engine: docker.DockerClient) -> str:
    """A small image with a shell: imported from the host's static busybox, or the e2e base image."""
    try:
        engine.images.get(TINY_IMAGE)
        return TINY_IMAGE
    except docker.errors.ImageNotFound:
        pass
    busybox = shutil.which("busybox")
    if busybox and _is_static(Path(busybox)):
        repository, tag = TINY_IMAGE.rsplit(":", 1)
        engine.api.import_image_from_data(_busybox_rootfs(Path(busybox)), repository=repository, tag=tag)
        return TINY_IMAGE
    try:
        engine.images.get(BASE_IMAGE)
        return BASE_IMAGE
    except docker.errors.ImageNotFound:
        pytest.skip(f"no image to test with: install busybox-static, or build {BASE_IMAGE} (tests/e2e/images/build.sh)")


PROGRAM = '''
"""A throwaway program exercising what the harness applies."""

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tls as tls

import helpers

config = pulumi.Config()
image = config.require("image")
suffix = config.require("suffix")
marker_dir = config.require("markerDir")
web_settings = config.require_object("web")
helpers.CALLS.append("run")

password = random.RandomPassword("db-password", length=24, special=False)
backend = docker.Network(
    "backend", name=f"harness-backend-{suffix}", labels=[docker.NetworkLabelArgs(label="purpose", value="e2e")]
)
frontend = docker.Network("frontend", name=f"harness-frontend-{suffix}", internal=True)
data = docker.Volume("data", name=f"harness-data-{suffix}")
key = tls.PrivateKey("key", algorithm="ECDSA", ecdsa_curve="P256")
cert = tls.SelfSignedCert(
    "cert",
    private_key_pem=key.private_key_pem,
    subject=tls.SelfSignedCertSubjectArgs(common_name="web.e2e.test"),
    dns_names=["web.e2e.test"],
    validity_period_hours=24,
    allowed_uses=["digital_signature", "server_auth"],
)
greeting_image = docker.Image(
    "greeting-image",
    image_name=f"harness-greeting:{suffix}",
    build=docker.DockerBuildArgs(
        context="app", args={"BASE": image, "GREETING": web_settings["greeting"]}, network="none"
    ),
    skip_push=True,
)

web = docker.Container(
    "web",
    name=f"harness-web-{suffix}",
    image=image,
    command=["sh", "-c", "test -f /data/first-start || date +%s%N > /data/first-start; touch /tmp/ready; exec sleep 3600"],
    envs=[password.result.apply(lambda value: f"DB_PASSWORD={value}"), "MODE=e2e"],
    networks_advanced=[
        docker.ContainerNetworksAdvancedArgs(name=backend.name, aliases=["web", "www"]),
        docker.ContainerNetworksAdvancedArgs(name=frontend.name, aliases=["web-front"]),
    ],
    volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path="/data")],
    uploads=[
        docker.ContainerUploadArgs(
            file="/usr/local/bin/check.sh", content="#!/bin/sh\\ntest -f /tmp/ready\\n", executable=True
        ),
        docker.ContainerUploadArgs(file="/etc/web/tls.crt", content=cert.cert_pem),
    ],
    healthcheck=docker.ContainerHealthcheckArgs(
        tests=["CMD", "/usr/local/bin/check.sh"],
        interval=web_settings.get("interval", "500ms"),
        timeout="2s",
        retries=3,
        start_period="1s",
    ),
    wait=True,
    wait_timeout=30,
    memory=web_settings["memory"],
    memory_swap=web_settings.get("memory_swap"),
    memory_reservation=32,
    cpus=web_settings["cpus"],
    restart="unless-stopped",
    log_driver="json-file",
    log_opts={"max-size": "1m", "max-file": "2"},
    labels=[docker.ContainerLabelArgs(label="app", value="harness-e2e")],
    init=True,
    opts=pulumi.ResourceOptions(replace_on_changes=["healthcheck"]),
)
greeting = docker.Container(
    "greeting",
    name=f"harness-greeting-{suffix}",
    image=greeting_image.image_name,
    command=["cat", "/greeting"],
    attach=True,
    logs=True,
    must_run=False,
    networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=backend.name)],
)
note = command.local.Command(
    "note",
    create='echo "$GREETING:${#DB_PASSWORD}"',
    delete=f"echo deleted > {marker_dir}/deleted-{suffix}",
    environment={"GREETING": web_settings["greeting"], "DB_PASSWORD": password.result},
    opts=pulumi.ResourceOptions(depends_on=[web]),
)

pulumi.export("web_name", web.name)
pulumi.export("web_backend_ip", web.network_datas.apply(
    lambda datas: next(d.ip_address for d in datas if d.network_name == f"harness-backend-{suffix}")
))
pulumi.export("note", note.stdout)
pulumi.export("password", password.result)
pulumi.export("greeting_logs", greeting.container_logs)
pulumi.export("greeting_exit_code", greeting.exit_code)
pulumi.export("cert_pem", cert.cert_pem)
pulumi.export("runs_seen_by_module", len(helpers.CALLS))
'''

DOCKERFILE = """\
ARG BASE
FROM ${BASE}
ARG GREETING
RUN echo "$GREETING from the image" > /greeting
"""


def write_throwaway_program(tmp_path: Path, image: str) -> tuple[Path, dict[str, object]]:
    """A program directory (stack "e2e") and config overrides naming objects unique to this call."""
    program_dir = tmp_path / "program"
    (program_dir / "app").mkdir(parents=True)
    (program_dir / "Pulumi.yaml").write_text("name: harness-e2e\nruntime: python\n")
    (program_dir / "Pulumi.e2e.yaml").write_text(
        textwrap.dedent(
            """\
            config:
              harness-e2e:web:
                memory: 64
                cpus: "0.5"
                greeting: hello
            """
        )
    )
    (program_dir / "__main__.py").write_text(PROGRAM)
    (program_dir / "helpers.py").write_text(
        '"""Module-level state that must not survive between applies."""\n\nCALLS: list[str] = []\n'
    )
    (program_dir / "app" / "Dockerfile").write_text(DOCKERFILE)
    markers = tmp_path / "markers"
    markers.mkdir()
    overrides: dict[str, object] = {"image": image, "suffix": uuid.uuid4().hex[:8], "markerDir": str(markers)}
    return program_dir, overrides


@pytest.fixture
def throwaway_program(tmp_path: Path, tiny_image: str) -> tuple[Path, dict[str, object]]:
    return write_throwaway_program(tmp_path, tiny_image)
