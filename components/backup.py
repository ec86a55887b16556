"""BackupJob: one container that backs up Synapse and VoiceGrow on a schedule, online, and restores them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.runtime.commands import exec_in_container
from components.runtime.deployment import Deployment, service_container
from components.runtime.storage import built_image, data_volume, secret_upload
from components.runtime.workload import HealthCheck, ServiceContainer, role_fields
from components.contracts import SynapseBackupTarget, VoiceGrowBackupTarget
from components.images.backup import archives as job_file
from components.rendering import backup as render
from components.rendering import synapse as synapse_render
from components.rendering import voicegrow as voicegrow_render
from components.secrets import secret_or_generated
from config.models import BackupSettings, RemoteMediaPurge, RoleSettings, StateCompression

ROOT_ONLY = "0600"
"""Mode of the job's secret files: it runs as root, and nothing else in its container reads them."""
# Relative to the project directory, where Pulumi runs the program.
IMAGE_CONTEXT = "components/images/backup"

# The services' aliases on their own networks (see SynapseStack and VoiceGrowStack).
POSTGRES = render.PostgresSource(
    host="postgres", port=5432, user=synapse_render.DATABASE_USER, database=synapse_render.DATABASE_NAME
)
MYSQL = render.MysqlSource(host="mysql", port=voicegrow_render.MYSQL_PORT, database=voicegrow_render.DATABASE)
MINIO_ENDPOINT = f"http://minio:{voicegrow_render.MINIO_API_PORT}"
OFFSITE_SECTION_OUTPUT = "backup_offsite_rclone_section"
"""The stack output holding the crypt section that decrypts the offsite copies (see __main__)."""


@dataclass(frozen=True)
class BackupJobArgs:
    """The backup settings, the systems to back up (their backup targets; None when not deployed) and the job's own role."""

    settings: BackupSettings
    image: pulumi.Output[str]
    """The backup image (see `backup_image`)."""
    role: RoleSettings
    offsite_rclone_config: pulumi.Output[str] | None
    offsite_password: pulumi.Output[str] | None
    """The operator's crypt password for the offsite copies; None: generated once and kept in the state."""
    offsite_salt: pulumi.Output[str] | None
    """The operator's crypt salt (rclone's password2); None: generated once and kept in the state."""
    synapse: SynapseBackupTarget | None
    voicegrow: VoiceGrowBackupTarget | None
    remote_media_purge: RemoteMediaPurge | None = None
    """Synapse's remote media purge, when the job's scheduler runs it (it needs Synapse's admin account)."""
    state_compression: StateCompression | None = None
    """Synapse's state compression, when the job's scheduler runs it."""


def backup_image(deployment: Deployment, base_image: str) -> pulumi.Output[str]:
    """The image of the backup job and the healer, built on the stack's PostgreSQL image
    (`base_image`) so that pg_dump matches the server."""
    return built_image(
        "backup-image",
        f"{deployment.prefix}-backup:local",
        IMAGE_CONTEXT,
        pulumi.ResourceOptions(provider=deployment.provider),
        build_args={"BASE_IMAGE": base_image},
        platform=deployment.platform,
    )


class BackupJob(pulumi.ComponentResource):
    """Scheduled online backups into timestamped archives, with retention, offsite copy and restore."""

    def __init__(
        self, name: str, deployment: Deployment, args: BackupJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{deployment.project}:components:BackupJob", name, None, opts)
        if args.synapse is None and args.voicegrow is None:
            raise ValueError("BackupJob needs SynapseStack or VoiceGrowStack to back up")
        child = pulumi.ResourceOptions(parent=self, provider=deployment.provider)
        settings = args.settings

        archives = self._archives(deployment, args, child)
        media_purge = _media_purge(args)
        job_json = _job_json(deployment, args, media_purge)
        offsite_directory = render.offsite_directory(settings.offsite, render.offsite_owner(deployment.project, deployment.stack))
        self.offsite_crypt_section = self._offsite_crypt_section(args, offsite_directory, child)
        """The rclone crypt section (secret) that decrypts the offsite copies; None when they are not encrypted."""
        self.offsite_restore: str | None = None
        """How to restore from the offsite copy, in words (no secret); None without one."""
        if settings.offsite.enabled:
            self.offsite_restore = render.offsite_restore_instructions(
                deployment.stack, offsite_directory, settings.offsite.encrypt, OFFSITE_SECTION_OUTPUT
            )
        mysql_password = secret_or_generated("backup-mysql-password", None, child) if args.voicegrow is not None else None
        uploads = [docker.ContainerUploadArgs(file=job_file.JOB_PATH, content=job_json)]
        uploads += self._credential_uploads(args, media_purge is not None, self.offsite_crypt_section, mysql_password)
        uploads += _config_uploads(args.synapse, args.voicegrow)
        volumes, networks, depends_on = self._sources(deployment, args, archives, mysql_password)

        self.container = service_container(
            deployment,
            ServiceContainer(
                **role_fields(args.role),
                name="backup",
                image=args.image,
                # Unhealthy once the last success is older than twice the schedule's interval.
                healthcheck=HealthCheck(test=["CMD", "backupctl", "health"], start_period=10),
                network=networks[0],
                aliases=["backup"],
                extra_networks=networks[1:],
                volumes=volumes,
                uploads=uploads,
            ),
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends_on)),
        )
        self._publish(deployment)

    def _archives(self, deployment: Deployment, args: BackupJobArgs, child: pulumi.ResourceOptions) -> docker.ContainerVolumeArgs:
        """Where the archives are kept (also set as `self.location`): the operator's host path, or
        a volume of the stack's."""
        settings = args.settings
        if settings.host_path is not None:
            self.location: pulumi.Output[str] = pulumi.Output.from_input(settings.host_path)
            return docker.ContainerVolumeArgs(host_path=settings.host_path, container_path=job_file.ARCHIVE_DIR)
        volume = data_volume(deployment, "backup", child)
        self.location = volume.name
        return docker.ContainerVolumeArgs(volume_name=volume.name, container_path=job_file.ARCHIVE_DIR)

    def _sources(
        self, deployment: Deployment, args: BackupJobArgs, archives: docker.ContainerVolumeArgs, mysql_password: pulumi.Output[str] | None
    ) -> tuple[list[docker.ContainerVolumeArgs], list[docker.Network], list[pulumi.Resource]]:
        """The volumes and networks the job reads its sources from, and what must run before it:
        the databases, the backup's own MySQL account, MinIO and its bucket."""
        synapse, voicegrow = args.synapse, args.voicegrow
        volumes = [archives]
        networks = []
        depends_on: list[pulumi.Resource] = []
        if synapse is not None:
            volumes.append(
                docker.ContainerVolumeArgs(volume_name=synapse.data_volume.name, container_path=job_file.SYNAPSE_DATA_DIR)
            )
            networks.append(synapse.network)
            depends_on.append(synapse.postgres)
        if voicegrow is not None:
            assert mysql_password is not None
            networks.append(voicegrow.network)
            # Made (or updated) by root in the MySQL container once it runs, and again whenever
            # the container is replaced (a restored or new data directory may lack it).
            mysql_account = exec_in_container(
                "backup-mysql-account",
                deployment,
                voicegrow.mysql,
                voicegrow_render.mysql_as_root(render.mysql_backup_account_statements(MYSQL), "BACKUP_PASSWORD"),
                {"BACKUP_PASSWORD": mysql_password},
                self,
                triggers=[voicegrow.mysql.id, mysql_password],
            )
            depends_on += [voicegrow.mysql, mysql_account, voicegrow.minio, voicegrow.bucket]

        return volumes, networks, depends_on

    def _publish(self, deployment: Deployment) -> None:
        """The commands and outputs operators use."""
        self.container_name = self.container.name
        self.restore_command = pulumi.Output.from_input(
            render.restore_command(
                deployment.stack, deployment.prefix, f"{deployment.project}-{deployment.stack}", deployment.docker_host
            )
        )
        self.backup_now_command = self.container.name.apply(
            lambda container: f"docker exec {deployment.runtime.running_container(container)} backup-now"
        )
        self.register_outputs(
            {
                "location": self.location,
                "container": self.container_name,
                "restore_command": self.restore_command,
                "backup_now_command": self.backup_now_command,
                "offsite_restore": self.offsite_restore,
            }
        )

    @staticmethod
    def _offsite_crypt_section(
        args: BackupJobArgs, directory: str, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str] | None:
        """The crypt remote over the stack's offsite `directory`, its keys the operator's or generated once."""
        offsite = args.settings.offsite
        if not (offsite.enabled and offsite.encrypt):
            return None
        # Replacing a generated key would leave every earlier offsite copy unreadable: the key is
        # also a stack output, to be kept outside the state.
        password = secret_or_generated("offsite-password", args.offsite_password, child)
        salt = secret_or_generated("offsite-salt", args.offsite_salt, child)
        return pulumi.Output.secret(
            pulumi.Output.all(password, salt).apply(lambda keys: render.render_offsite_crypt(directory, keys[0], keys[1]))
        )

    @staticmethod
    def _credential_uploads(
        args: BackupJobArgs,
        media_purge: bool,
        offsite_crypt_section: pulumi.Output[str] | None,
        mysql_password: pulumi.Output[str] | None,
    ) -> list[docker.ContainerUploadArgs]:
        """Password files, readable by root only, each a secret input."""
        uploads = []
        if args.synapse is not None:
            password = args.synapse.postgres_password
            uploads.append(secret_upload(job_file.PGPASS_PATH, password.apply(lambda value: render.render_pgpass(POSTGRES, value)), ROOT_ONLY))
        if args.voicegrow is not None:
            assert mysql_password is not None
            uploads.append(
                secret_upload(job_file.MYSQL_CLIENT_PATH, mysql_password.apply(lambda value: render.render_mysql_client(MYSQL, value)), ROOT_ONLY)
            )
            user, password = args.voicegrow.minio_credentials
            source = render.BucketSource(MINIO_ENDPOINT, args.voicegrow.bucket_name)
            uploads.append(
                secret_upload(
                    job_file.RCLONE_PATH,
                    pulumi.Output.all(user, password).apply(lambda keys: render.render_rclone_minio(source, keys[0], keys[1])),
                    ROOT_ONLY,
                )
            )
        if media_purge and args.synapse is not None and args.synapse.admin_password is not None:
            uploads.append(secret_upload(job_file.SYNAPSE_ADMIN_PASSWORD_PATH, args.synapse.admin_password, ROOT_ONLY))
        if args.settings.offsite.enabled:
            if args.offsite_rclone_config is None:
                raise ValueError("backup.offsite needs the secret backup_rclone_config")
            rclone_config = pulumi.Output.all(args.offsite_rclone_config, offsite_crypt_section).apply(
                lambda parts: render.render_offsite_rclone(parts[0], parts[1])
            )
            uploads.append(secret_upload(job_file.OFFSITE_RCLONE_PATH, rclone_config, ROOT_ONLY))
        return uploads


def _media_purge(args: BackupJobArgs) -> job_file.MediaPurge | None:
    """The job's purge of cached remote media, where it runs (it needs Synapse's admin account)."""
    synapse = args.synapse
    if args.remote_media_purge is None or synapse is None or synapse.admin_username is None:
        return None
    return job_file.MediaPurge(
        schedule=args.remote_media_purge.schedule,
        max_age_days=args.remote_media_purge.max_age_days,
        synapse_url=f"http://synapse:{synapse_render.HTTP_PORT}",
        admin_user=synapse.admin_username,
    )


def _job_json(deployment: Deployment, args: BackupJobArgs, media_purge: job_file.MediaPurge | None) -> pulumi.Output[str]:
    """The job file: what to back up, from where, and the containers to stop while restoring each part."""
    settings = args.settings
    synapse, voicegrow = args.synapse, args.voicegrow
    # The containers that write each part's data, stopped while restoring it (Synapse's main
    # process first: its workers replicate from it).
    synapse_services = synapse.services if synapse else []
    voicegrow_services = voicegrow.services if voicegrow else []
    compression = args.state_compression
    state_compression = (
        job_file.StateCompression(
            schedule=compression.schedule,
            chunk_size=compression.chunk_size,
            number_of_chunks=compression.number_of_chunks,
            levels=compression.levels,
        )
        if compression is not None and synapse is not None
        else None
    )
    return pulumi.Output.all(
        synapse=pulumi.Output.all(*synapse_services), voicegrow=pulumi.Output.all(*voicegrow_services)
    ).apply(
        lambda names: render.render_job(
            deployment.project,
            deployment.stack,
            settings,
            render.JobTargets(
                postgres=POSTGRES if synapse else None,
                mysql=MYSQL if voicegrow else None,
                bucket=render.BucketSource(MINIO_ENDPOINT, voicegrow.bucket_name) if voicegrow else None,
                synapse_data=synapse is not None,
                configs=True,
                services={
                    "synapse": names["synapse"],
                    "mysql": names["voicegrow"],
                    # Synapse and its media workers write the media store.
                    "media": names["synapse"],
                    "bucket": names["voicegrow"],
                },
                media_purge=media_purge,
                state_compression=state_compression,
            ),
        )
    )


def _config_uploads(synapse: SynapseBackupTarget | None, voicegrow: VoiceGrowBackupTarget | None) -> list[docker.ContainerUploadArgs]:
    """The configuration the stacks rendered, archived with the data (secret: it holds passwords)."""
    files = {}
    if synapse is not None:
        files.update({f"synapse/{name}": content for name, content in synapse.config_files.items()})
    if voicegrow is not None:
        files.update({f"voicegrow/{name}": content for name, content in voicegrow.config_files.items()})
    return [
        secret_upload(f"{job_file.CONFIGS_DIR}/{name}", content, ROOT_ONLY)
        for name, content in files.items()
    ]
