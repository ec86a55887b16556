"""Image settings: defaults that still pull, one mirror per registry, the host's platform."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, resolve_settings
from config.models import ImageSettings
from config.types import image_tag, split_reference
from tests.unit.conftest import Evaluate
from tests.stack_config import ALERT_RECEIVERS

SYNAPSE = {"server_name": "example.com", "admin_username": "admin"}
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
BUILT_IMAGE = "docker:index/image:Image"


def _images(**images: Any) -> ImageSettings:
    raw = {"synapse": SYNAPSE, "proxy": {"acme_email": "ops@example.com"}, "monitoring": ALERT_RECEIVERS, "images": images}
    return resolve_settings("selfhosted", "prod", raw).images


def test_minio_defaults_to_quay_io_where_its_images_still_are() -> None:
    assert split_reference(ImageSettings().minio) == ("quay.io", "minio/minio:RELEASE.2025-04-22T22-12-26Z")


def test_no_default_image_comes_from_minios_deleted_docker_hub_repositories() -> None:
    for name in ImageSettings.model_fields.keys() - ImageSettings.NOT_IMAGES:
        registry, repository = split_reference(getattr(ImageSettings(), name))
        assert not (registry == "docker.io" and repository.startswith("minio/")), name


def test_mysql_defaults_to_the_84_lts_line() -> None:
    assert (image_tag(ImageSettings().mysql) or "").startswith("8.4.")


def test_docker_hub_mirror_puts_official_images_under_library() -> None:
    assert _images(registry_mirrors={"docker.io": "mirror.example.cn/hub"}).reference("redis") == (
        "mirror.example.cn/hub/library/redis:7.4.5-bookworm"
    )


def test_docker_hub_mirror_keeps_the_namespace_of_other_hub_images() -> None:
    assert _images(registry_mirrors={"docker.io": "mirror.example.cn/hub"}).reference("acme") == (
        "mirror.example.cn/hub/certbot/certbot:v3.3.0"
    )


def test_a_reference_that_names_docker_io_goes_through_the_docker_hub_mirror() -> None:
    images = _images(registry_mirrors={"docker.io": "mirror.example.cn/hub"}, nginx="docker.io/nginx:1.27.5-alpine")
    assert images.reference("nginx") == "mirror.example.cn/hub/library/nginx:1.27.5-alpine"


def test_a_registry_without_a_mirror_is_pulled_from_itself() -> None:
    assert _images(registry_mirrors={"docker.io": "mirror.example.cn/hub"}).reference("minio") == (
        "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z"
    )


def test_each_registry_goes_through_its_own_mirror() -> None:
    images = _images(
        registry_mirrors={"quay.io": "mirror.example.cn/quay", "ghcr.io": "mirror.example.cn/ghcr"},
        synapse="ghcr.io/element-hq/synapse:v1.163.2",
    )
    assert images.reference("minio") == "mirror.example.cn/quay/minio/minio:RELEASE.2025-04-22T22-12-26Z"
    assert images.reference("synapse") == "mirror.example.cn/ghcr/element-hq/synapse:v1.163.2"
    assert images.reference("postgres") == "postgres:16.10-bookworm"


def test_a_private_registry_with_a_port_can_have_a_mirror() -> None:
    images = _images(registry_mirrors={"registry.example.com:5000": "mirror.example.cn/private"})
    assert images.mirrored("registry.example.com:5000/voicegrow/server:1.0.0") == "mirror.example.cn/private/voicegrow/server:1.0.0"


def test_the_renamed_registry_mirror_fails_naming_the_new_key_and_how_to_write_it() -> None:
    with pytest.raises(ConfigError) as error:
        _images(registry_mirror="mirror.example.cn/hub")
    assert (
        "selfhosted:images.registry_mirror was renamed to images.registry_mirrors, one mirror per registry host: "
        "write it as registry_mirrors: {docker.io: mirror.example.cn/hub}"
    ) in str(error.value)


def test_the_renamed_registry_mirror_fails_before_any_resource(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"images\.registry_mirror was renamed"):
        evaluate("prod", overrides={"images": {"registry_mirror": "mirror.example.cn/hub"}})


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64", "linux/arm/v7"])
def test_platform_accepts_docker_platforms(platform: str) -> None:
    assert _images(platform=platform).platform == platform


def test_every_pulled_image_is_pulled_for_the_configured_platform(evaluate: Evaluate) -> None:
    pulled = evaluate("prod", overrides={"images": {"platform": "linux/arm64"}}).mocks.of_type(REMOTE_IMAGE)
    assert pulled
    for image in pulled:
        assert image.value("platform") == "linux/arm64", image.name


def test_every_built_image_is_built_for_the_configured_platform(evaluate: Evaluate, tmp_path: Any) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    overrides = {"images": {"platform": "linux/arm64"}, "voicegrow": {"server_image": None, "server_source": str(tmp_path)}}
    built = evaluate("prod", overrides=overrides).mocks.of_type(BUILT_IMAGE)
    assert {image.name for image in built} == {"backup-image", "voicegrow-server-build"}
    for image in built:
        assert image.value("build")["platform"] == "linux/arm64", image.name


def test_without_a_platform_images_are_pulled_and_built_for_the_default(evaluate: Evaluate) -> None:
    mocks = evaluate("prod").mocks
    images = mocks.of_type(REMOTE_IMAGE)
    assert images and all("platform" not in image.inputs for image in images)
    assert "platform" not in mocks.named("backup-image", BUILT_IMAGE).value("build")
