"""The program: validate the stack's settings, declare each component, export what operators need."""

from dataclasses import replace

import pulumi
import pulumi_docker as docker

from components.backup import OFFSITE_SECTION_OUTPUT, BackupJob, BackupJobArgs, backup_image
from components.changes import BackupBeforeChanges
from components.runtime.deployment import Deployment
from components.runtime.engine import EngineRuntime
from components.runtime.storage import front_network
from components.runtime.swarm import SwarmRuntime
from components.healer import Healer, HealerArgs
from components.maintenance import ImagePruning
from components.firewall import HostFirewall, HostFirewallArgs
from components.monitoring import Monitoring, MonitoringArgs, deployed as monitored
from components.proxy import ReverseProxy, ReverseProxyArgs
from components.rendering.firewall import allowed_ports
from components.secrets import secret_or_generated
from components.swarm import SwarmNodes
from components.synapse import SynapseStack, SynapseStackArgs
from components.voicegrow import VoiceGrowStack, VoiceGrowStackArgs
from config import load_config
from config.profiles import PROFILES, synapse_workers

loaded = load_config()
settings = loaded.settings
profile = PROFILES[settings.profile]

deployment = Deployment(
    project=settings.project,
    stack=settings.stack,
    prefix=settings.prefix,
    log_rotation=settings.logging,
    protect_data=settings.protect_data,
    runtime=EngineRuntime(),
    docker_host=settings.docker.host,
    provider=docker.Provider("docker", host=settings.docker.host) if settings.docker.host else None,
    platform=settings.images.platform,
)
if settings.orchestrator == "swarm":
    # The nodes are labelled with the engine's own commands, before any service is placed.
    deployment = replace(
        deployment,
        runtime=SwarmRuntime(
            nodes=SwarmNodes("swarm-nodes", deployment, settings.swarm.nodes),
            name_key=secret_or_generated("swarm-name-key", None, pulumi.ResourceOptions()),
        ),
    )

# Where backups run, a deploy backs up before it replaces a container that holds data.
backup_before_changes = (
    BackupBeforeChanges(deployment) if settings.backup.enabled and settings.backup.before_changes else None
)
# The proxy's network, made first: the containers it serves join it; nothing that holds data does.
serves = settings.proxy.enabled and (settings.synapse.enabled or settings.voicegrow.enabled)
front = front_network(deployment, pulumi.ResourceOptions(provider=deployment.provider)) if serves else None
synapse: SynapseStack | None = None
voicegrow: VoiceGrowStack | None = None
backup: BackupJob | None = None
proxy: ReverseProxy | None = None

if settings.synapse.enabled:
    synapse_roles = settings.roles_of("synapse")
    synapse = SynapseStack(
        "synapse",
        deployment,
        SynapseStackArgs(
            settings=settings.synapse,
            tls=settings.tls != "off",
            synapse_tuning=profile.synapse,
            postgres_tuning=profile.postgres,
            roles=synapse_roles,
            images=settings.images_of(synapse_roles),
            secrets=loaded.secrets,
            backup=backup_before_changes,
            workers=synapse_workers(profile.synapse_workers) if settings.synapse.workers else [],
            worker_plan=profile.synapse_workers,
            front_network=front,
        ),
    )
    pulumi.export("synapse_server_name", synapse.server_name)
    pulumi.export("synapse_client_url", synapse.client_url)
    pulumi.export("synapse_wellknown_urls", synapse.wellknown_urls)
    if synapse.admin_password is not None:
        pulumi.export("synapse_admin_user", f"@{settings.synapse.admin_username}:{settings.synapse.server_name}")
        pulumi.export("synapse_admin_password", synapse.admin_password)
    if synapse.registration_token is not None:
        pulumi.export("synapse_registration_token", synapse.registration_token)

if settings.voicegrow.enabled:
    voicegrow_roles = settings.roles_of("voicegrow")
    voicegrow_images = settings.images_of(voicegrow_roles)
    if settings.voicegrow.server_image is not None:
        voicegrow_images["server"] = settings.images.mirrored(settings.voicegrow.server_image)
    voicegrow = VoiceGrowStack(
        "voicegrow",
        deployment,
        VoiceGrowStackArgs(
            settings=settings.voicegrow,
            tuning=profile.voicegrow,
            roles=voicegrow_roles,
            images=voicegrow_images,
            secrets=loaded.secrets,
            backup=backup_before_changes,
            other_proxy_upstreams=synapse.proxied_containers if synapse is not None else [],
            front_network=front,
        ),
    )
    pulumi.export("voicegrow_http_urls", voicegrow.http_urls)
    pulumi.export("voicegrow_ws_upstreams", voicegrow.ws_upstreams)
    pulumi.export("voicegrow_http_upstreams", voicegrow.http_upstreams)

if backup_before_changes is not None:
    backup_before_changes.seal()

deployed = synapse is not None or voicegrow is not None
# The backup job and the healer run from one image, built on the stack's PostgreSQL image.
tools_image = (
    backup_image(deployment, settings.images.reference("postgres"))
    if deployed and (settings.backup.enabled or settings.healer.enabled)
    else None
)

if settings.backup.enabled and tools_image is not None:
    backup = BackupJob(
        "backup",
        deployment,
        BackupJobArgs(
            settings=settings.backup,
            image=tools_image,
            role=settings.role("backup"),
            offsite_rclone_config=loaded.secrets["backup_rclone_config"],
            offsite_password=loaded.secrets["backup_offsite_password"],
            offsite_salt=loaded.secrets["backup_offsite_salt"],
            synapse=synapse.backup_target if synapse is not None else None,
            voicegrow=voicegrow.backup_target if voicegrow is not None else None,
            remote_media_purge=settings.synapse.remote_media_purge if settings.remote_media_purge_runs else None,
            state_compression=settings.synapse.state_compression if settings.state_compression_runs else None,
        ),
    )
    pulumi.export("backup_location", backup.location)
    pulumi.export("backup_schedule", settings.backup.schedule)
    pulumi.export("backup_now_command", backup.backup_now_command)
    pulumi.export("backup_restore_command", backup.restore_command)
    if backup.offsite_restore is not None:
        pulumi.export("backup_offsite_restore", backup.offsite_restore)
    if backup.offsite_crypt_section is not None:
        pulumi.export(OFFSITE_SECTION_OUTPUT, backup.offsite_crypt_section)

monitoring_roles = settings.roles_of("monitoring")
monitoring = Monitoring(
    "monitoring",
    deployment,
    MonitoringArgs(
        settings=settings.monitoring,
        deployed=monitored(settings),
        synapse=synapse.monitoring_target if synapse is not None else None,
        voicegrow=voicegrow.monitoring_target if voicegrow is not None else None,
        roles=monitoring_roles,
        images=settings.images_of(monitoring_roles),
        synapse_image=settings.images.synapse,
        secrets=loaded.secrets,
        front_network=front,
        docker_socket=settings.healer.docker_socket,
    ),
)
pulumi.export("monitoring_admin_password", monitoring.admin_password)

proxied = [component for component in (synapse, voicegrow) if component is not None]
if front is not None:
    proxy_roles = settings.roles_of("proxy")
    proxy = ReverseProxy(
        "proxy",
        deployment,
        ReverseProxyArgs(
            settings=settings.proxy,
            tls_mode=settings.tls,
            matrix=synapse.route if synapse else None,
            voicegrow=voicegrow.routes if voicegrow else None,
            monitoring=monitoring.routes,
            monitoring_password=monitoring.admin_password,
            front_network=front,
            upstream_containers=[
                container for component in (*proxied, monitoring) for container in component.proxied_containers
            ],
            reloading_upstreams=[resource for component in proxied for resource in component.reloading_upstreams],
            roles=proxy_roles,
            images=settings.images_of(proxy_roles),
            secrets=loaded.secrets,
        ),
    )
    pulumi.export("proxy_urls", proxy.urls)
    if proxy.ca_certificate is not None:
        pulumi.export("proxy_ca_certificate", proxy.ca_certificate)

healer: Healer | None = None
if settings.healer.enabled and tools_image is not None:
    healer = Healer(
        "healer",
        deployment,
        HealerArgs(
            image=tools_image,
            role=settings.role("healer"),
            interval_seconds=settings.healer.interval_seconds,
            docker_socket=settings.healer.docker_socket,
            metrics_volume=monitoring.healer_metrics_volume,
            heals=[component for component in (synapse, voicegrow, backup, monitoring, proxy) if component is not None],
        ),
    )

if settings.images.prune:
    server_image = [settings.images.mirrored(settings.voicegrow.server_image)] if settings.voicegrow.server_image else []
    ImagePruning(
        "image-pruning",
        deployment,
        images=settings.images.references() + server_image,
        # Depending on a component waits for its children: every container runs its new image by then.
        after=[
            component for component in (synapse, voicegrow, backup, healer, monitoring, proxy) if component is not None
        ],
    )
target = settings.ssh_target()
if settings.firewall.enabled and target is not None:
    firewall = HostFirewall(
        "firewall",
        settings.project,
        HostFirewallArgs(
            target=target,
            ports=allowed_ports(settings),
            host_key=settings.firewall.host_key,
            private_key=loaded.secrets["firewall_ssh_private_key"],
        ),
    )
    pulumi.export("firewall_open_ports", firewall.open_ports)
