"""VoiceGrow's servers: the replicas of the operator's image (pulled, or built from source), their
environment and secret files, replaced one at a time behind the proxy."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from components.changes import proxy_reload_after
from components.parts import ComponentPart
from components.runtime.deployment import service_container
from components.runtime.storage import built_image, data_volume, fronted
from components.runtime.workload import FileDirectory, HealthCheck, ServiceContainer, Workload, role_fields
from components.rendering import voicegrow as render
from components.voicegrow.args import Passwords, VoiceGrowParts


class VoiceGrowServers(ComponentPart):
    """The server replicas, declared under the stack's component (their resources keep their names).

    Declared in two steps: the image, volumes and workloads first (a backup must precede their
    replacement), the replicas with `start` once the data services are declared.
    """

    def __init__(self, given: VoiceGrowParts) -> None:
        super().__init__(given.stack, given.deployment)
        self._args = given.args
        self.network = given.network
        self.volumes = {purpose: data_volume(given.deployment, f"voicegrow-{purpose}", self._child) for purpose in ("models", "logs")}
        self.specs = self._specs(self._image(given.images), given.passwords)
        self.servers: list[Workload] = []
        # Each replica and the proxy reload after it: the proxy starts after them all.
        self.reloading_upstreams: list[pulumi.Resource] = []

    def start(self, after_data: list[pulumi.Resource]) -> None:
        """The replicas after `after_data`, one at a time: each is replaced, healthy and known to
        the proxy before the next one stops."""
        previous: list[pulumi.Resource] = []
        for spec in self.specs:
            server = service_container(self._deployment, spec, self._child_after([*after_data, *previous]))
            reload = proxy_reload_after(f"{spec.name}-proxy-reload", self._deployment, server, self._component, self._args.other_proxy_upstreams)
            previous = [reload]
            self.servers.append(server)
            self.reloading_upstreams += [server, *previous]

    def _image(self, images: dict[str, docker.RemoteImage]) -> pulumi.Output[str]:
        """The operator's image, pulled, or built from the operator's source directory."""
        deployment, settings = self._deployment, self._args.settings
        if settings.server_source is None:
            return deployment.runtime.runnable(images["server"])
        return built_image(
            "voicegrow-server-build",
            f"{deployment.prefix}-voicegrow-server:local",
            settings.server_source,
            self._child,
            platform=deployment.platform,
        )

    def _specs(self, image: pulumi.Input[str], passwords: Passwords) -> list[ServiceContainer]:
        """The server replicas: the same image, environment and secret files, each its own ports."""
        args, settings = self._args, self._args.settings
        # The servers use the bucket with a user of their own; the root user stays with MinIO and the backup.
        server_secrets = pulumi.Output.all(
            passwords.mysql,
            passwords.redis,
            render.MINIO_APP_USER,
            passwords.minio_app,
            *_api_keys(args.secrets),
        ).apply(lambda values: render.ServerSecrets(*values))
        server_env = server_secrets.apply(lambda values: render.server_environment(settings, values))
        # The _FILE convention: each secret a file the server reads (see docs/security.md).
        server_files = (
            [
                FileDirectory(
                    "secrets",
                    render.SECRETS_DIR,
                    {
                        name.lower(): pulumi.Output.secret(
                            server_secrets.apply(lambda values, name=name: render.server_secrets(values)[name])
                        )
                        for name in render.SERVER_SECRET_NAMES
                        if name not in _unset_api_keys(args.secrets)
                    },
                )
            ]
            if settings.secret_files
            else []
        )
        return [
            ServiceContainer(
                **role_fields(args.roles["voicegrow_server"]),
                name=f"voicegrow-server-{replica}",
                runs_on="app",
                image=image,
                gpus="all" if settings.asr.device == "cuda" else None,
                healthcheck=HealthCheck(
                    test=["CMD", "curl", "-f", f"http://localhost:{render.SERVER_HTTP_PORT}/api/v1/health"],
                    timeout=10,
                    start_period=120,
                ),
                network=self.network,
                aliases=[f"server-{replica}", "server"],
                extra_networks=fronted(args.front_network),
                extra_aliases=[f"server-{replica}", "server"],
                envs=pulumi.Output.secret(server_env),
                file_directories=server_files,
                ports=[
                    docker.ContainerPortArgs(
                        internal=render.SERVER_WS_PORT,
                        external=settings.host_port(settings.ws_port, replica),
                        ip=settings.bind,
                    ),
                    docker.ContainerPortArgs(
                        internal=render.SERVER_HTTP_PORT,
                        external=settings.host_port(settings.http_port, replica),
                        ip=settings.bind,
                    ),
                ],
                volumes=[
                    docker.ContainerVolumeArgs(volume_name=self.volumes["models"].name, container_path="/app/models"),
                    docker.ContainerVolumeArgs(volume_name=self.volumes["logs"].name, container_path="/app/logs"),
                ],
            )
            for replica in range(1, settings.replicas + 1)
        ]


def _unset_api_keys(secrets: dict[str, pulumi.Output[str] | None]) -> set[str]:
    """The server's key variables that stay empty (see _api_keys): they get no file."""
    unset = {"TTS_API_KEY": secrets["tts_api_key"] is None, "TTS_SECRET_KEY": secrets["tts_secret_key"] is None}
    unset["LLM_API_KEY"] = secrets["llm_api_key"] is None and unset["TTS_API_KEY"]
    unset["LLM_SECRET_KEY"] = secrets["llm_secret_key"] is None and unset["TTS_SECRET_KEY"]
    return {name for name, empty in unset.items() if empty}


def _api_keys(secrets: dict[str, pulumi.Output[str] | None]) -> list[pulumi.Output[str]]:
    """TTS keys, and LLM keys that default to them (the guide lets both share one pair)."""
    tts_api = secrets["tts_api_key"] or pulumi.Output.secret("")
    tts_secret = secrets["tts_secret_key"] or pulumi.Output.secret("")
    if secrets["tts_api_key"] is None:
        pulumi.log.warn("tts_api_key is not set: VoiceGrow's TTS and LLM calls will be refused by ai-manager")
    return [tts_api, tts_secret, secrets["llm_api_key"] or tts_api, secrets["llm_secret_key"] or tts_secret]
