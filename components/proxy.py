"""ReverseProxy: one nginx in front of both systems, with certificates per the stack's TLS mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker
import pulumi_tls as tls

from components.changes import PROXY_CONTAINER
from components.runtime.deployment import Deployment, service_container
from components.runtime.storage import data_volume, pulled_image
from components.runtime.workload import FileDirectory, HealthCheck, ServiceContainer, Workload, role_fields
from components.rendering import proxy as render
from config.environments import TlsMode
from config.models import EdgeRateLimits, ProxySettings, RoleSettings

ACME_SCRIPT = Path(__file__).parent / "scripts" / "acme.sh"
ACME_DIR = "/opt/acme"
ACME_DIRECTORIES = {
    False: "https://acme-v02.api.letsencrypt.org/directory",
    True: "https://acme-staging-v02.api.letsencrypt.org/directory",
}


def _rate_limits(settings: EdgeRateLimits) -> list[render.RateLimit]:
    """The Matrix endpoints' limits at the edge, none when they are off."""
    if not settings.enabled:
        return []
    limits = {"login": settings.login, "registration": settings.registration, "media_upload": settings.media_upload}
    return [render.RateLimit(name, limit.rate, limit.burst) for name, limit in limits.items()]


@dataclass(frozen=True)
class ReverseProxyArgs:
    """The routes the other components expose, the front network the served containers join, and the proxy's settings."""

    settings: ProxySettings
    tls_mode: TlsMode
    matrix: render.MatrixRoute | None
    voicegrow: render.VoiceGrowRoutes | None
    monitoring: render.MonitoringRoutes | None
    monitoring_password: pulumi.Output[str] | None
    """The login of the Prometheus and Alertmanager hosts."""
    front_network: docker.Network
    """The proxy's only network: what it serves joins it (see components.runtime.storage.front_network)."""
    upstream_containers: list[Workload]
    """Upstreams whose replacement replaces the proxy (nginx resolves their names only at start)."""
    reloading_upstreams: list[pulumi.Resource]
    """Upstreams (and their reload commands) that reload the proxy when replaced: it starts after them."""
    roles: dict[str, RoleSettings]
    """The component's roles as the stack runs them (StackSettings.roles_of)."""
    images: dict[str, str]
    secrets: dict[str, pulumi.Output[str] | None]
    certificate_validity_hours: int = 24 * 365


class ReverseProxy(pulumi.ComponentResource):
    """nginx with TLS, security headers, WebSocket upgrade and replica upstreams."""

    def __init__(
        self, name: str, deployment: Deployment, args: ReverseProxyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{deployment.project}:components:ReverseProxy", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=deployment.provider)
        settings = args.settings
        hosts = render.proxied_hosts(args.matrix, args.voicegrow, args.monitoring)
        tls_on = args.tls_mode != "off"
        options = render.ProxyOptions(
            tls=tls_on,
            acme=args.tls_mode == "acme",
            federation_port=settings.federation_port,
            admin_allowlist=settings.admin_allowlist,
            hsts_include_subdomains=settings.hsts_include_subdomains,
            matrix_rate_limits=_rate_limits(settings.rate_limits),
        )
        nginx_image = pulled_image(args.images["nginx"], "proxy-nginx", child, deployment.platform)
        self.ca_certificate: pulumi.Output[str] | None = None

        proxy_conf = render.render_proxy_conf(args.matrix, args.voicegrow, options, args.monitoring)
        files = [FileDirectory("config", render.CONFIG_DIR, _config_files(args, proxy_conf))]
        volumes, command, acme_client = self._tls(deployment, args, hosts, files, child)
        depends_on: list[pulumi.Resource] = [*args.upstream_containers, *args.reloading_upstreams, *acme_client]

        # Where upstreams move without being replaced, nginx reloads when their addresses change.
        command = deployment.runtime.entry_command(
            command, render.render_upstream_watch(render.upstream_hosts(proxy_conf)), "nginx -g 'daemon off;'"
        )
        self.container = service_container(
            deployment,
            ServiceContainer(
                **role_fields(args.roles["proxy"]),
                name=PROXY_CONTAINER,
                runs_on="ingress",
                image=deployment.runtime.runnable(nginx_image),
                healthcheck=HealthCheck(
                    test=["CMD", "wget", "-q", "--spider", f"http://127.0.0.1{render.HEALTH_PATH}"],
                    timeout=5,
                    start_period=10,
                ),
                # Only the front network: no database, store, exporter or socket holder is on it.
                # The prober finds the public hosts there, under their names.
                network=args.front_network,
                aliases=["proxy", *hosts],
                # Upstream containers that are replaced get new addresses, which nginx resolves
                # only when it loads its configuration: naming them here replaces the proxy along
                # with them (VoiceGrow's replicas reload it instead, one by one; on Swarm the
                # proxy watches the addresses itself).
                envs=deployment.runtime.upstreams_environment(args.upstream_containers),
                command=command,
                ports=_ports(settings, tls_on),
                volumes=volumes,
                file_directories=files,
            ),
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends_on)),
        )
        scheme = "https" if tls_on else "http"
        self.urls = {host: f"{scheme}://{host}/" for host in hosts}
        self.register_outputs({"urls": self.urls, "ca_certificate": self.ca_certificate})

    def _tls(
        self,
        deployment: Deployment,
        args: ReverseProxyArgs,
        hosts: list[str],
        files: list[FileDirectory],
        child: pulumi.ResourceOptions,
    ) -> tuple[list[docker.ContainerVolumeArgs], list[str] | None, list[pulumi.Resource]]:
        """The certificate as `args.tls_mode` says: files added to `files`, or (acme) the volumes
        certbot writes to, the command that reloads nginx on renewal, and certbot beside it."""
        volumes: list[docker.ContainerVolumeArgs] = []
        command: list[str] | None = None
        acme_client: list[pulumi.Resource] = []
        if args.tls_mode in ("self-signed", "files"):
            certificate, key = (
                self._self_signed(deployment, hosts, args.certificate_validity_hours)
                if args.tls_mode == "self-signed"
                else (args.secrets["tls_certificate"], args.secrets["tls_private_key"])
            )
            assert certificate is not None and key is not None
            files.append(
                FileDirectory(
                    "tls",
                    render.TLS_DIR,
                    {render.CERTIFICATE_FILE: certificate, render.PRIVATE_KEY_FILE: pulumi.Output.secret(key)},
                )
            )
        elif args.tls_mode == "acme":
            tls_volume = data_volume(deployment, "proxy-tls", child)
            webroot = data_volume(deployment, "proxy-acme-webroot", child)
            volumes = [
                docker.ContainerVolumeArgs(volume_name=tls_volume.name, container_path=render.TLS_DIR, read_only=True),
                docker.ContainerVolumeArgs(volume_name=webroot.name, container_path=render.ACME_WEBROOT, read_only=True),
            ]
            acme_client.append(self._acme_client(deployment, args, hosts, tls_volume, webroot, child))
            # nginx reads a renewed certificate only on reload: check every 10 s (a file date, nothing more).
            command = [
                "/bin/sh",
                "-c",
                "touch /tmp/tls-loaded; "
                f"while sleep 10; do if [ {render.CERTIFICATE_PATH} -nt /tmp/tls-loaded ]; then "
                "touch /tmp/tls-loaded; nginx -s reload; fi; done & exec nginx -g 'daemon off;'",
            ]
        return volumes, command, acme_client

    def _self_signed(
        self, deployment: Deployment, hosts: list[str], validity_hours: int
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """A private CA and a certificate for every host; clients trust the exported CA certificate."""
        opts = pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey("proxy-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=opts)
        ca = tls.SelfSignedCert(
            "proxy-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            validity_period_hours=validity_hours * 5,
            allowed_uses=["cert_signing", "crl_signing"],
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"{deployment.prefix} private CA"),
            opts=opts,
        )
        key = tls.PrivateKey("proxy-key", algorithm="ECDSA", ecdsa_curve="P256", opts=opts)
        request = tls.CertRequest(
            "proxy-csr",
            private_key_pem=key.private_key_pem,
            dns_names=hosts,
            subject=tls.CertRequestSubjectArgs(common_name=hosts[0]),
            opts=opts,
        )
        certificate = tls.LocallySignedCert(
            "proxy-certificate",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            validity_period_hours=validity_hours,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=opts,
        )
        self.ca_certificate = ca.cert_pem
        return pulumi.Output.concat(certificate.cert_pem, ca.cert_pem), key.private_key_pem

    def _acme_client(
        self,
        deployment: Deployment,
        args: ReverseProxyArgs,
        hosts: list[str],
        tls_volume: docker.Volume,
        webroot: docker.Volume,
        child: pulumi.ResourceOptions,
    ) -> Workload:
        """certbot answering HTTP-01 challenges through the proxy's webroot, renewing on a schedule."""
        settings = args.settings
        state = data_volume(deployment, "proxy-letsencrypt", child)
        image = pulled_image(args.images["acme"], "proxy-acme", child, deployment.platform)
        envs = [
            f"ACME_DOMAINS={' '.join(hosts)}",
            f"ACME_EMAIL={settings.acme_email}",
            f"ACME_SERVER={settings.acme_directory or ACME_DIRECTORIES[settings.acme_staging]}",
            f"RENEW_HOURS={settings.acme_renew_hours}",
        ]
        files: dict[str, pulumi.Input[str]] = {"acme.sh": ACME_SCRIPT.read_text()}
        if settings.acme_directory_ca is not None:
            # certbot talks to the directory through requests, which reads its trust roots from here.
            envs.append(f"REQUESTS_CA_BUNDLE={ACME_DIR}/directory-ca.pem")
            files["directory-ca.pem"] = settings.acme_directory_ca
        return service_container(
            deployment,
            ServiceContainer(
                **role_fields(args.roles["acme"]),
                name="proxy-acme",
                image=deployment.runtime.runnable(image),
                healthcheck=HealthCheck(test=["CMD-SHELL", "test -s /tls/fullchain.pem"], start_period=30),
                # Beside the proxy: it checks that the proxy serves its challenge webroot.
                network=args.front_network,
                aliases=["acme"],
                envs=envs,
                entrypoint=["/bin/sh", f"{ACME_DIR}/acme.sh"],
                volumes=[
                    docker.ContainerVolumeArgs(volume_name=tls_volume.name, container_path="/tls"),
                    docker.ContainerVolumeArgs(volume_name=webroot.name, container_path=render.ACME_WEBROOT),
                    docker.ContainerVolumeArgs(volume_name=state.name, container_path="/etc/letsencrypt"),
                ],
                # It runs as the proxy's user, so the key it writes (0600) is the proxy's to read.
                owned_paths=["/tls", render.ACME_WEBROOT, "/etc/letsencrypt"],
                file_directories=[FileDirectory("script", ACME_DIR, files)],
            ),
            child,
        )


def _config_files(args: ReverseProxyArgs, proxy_conf: str) -> dict[str, pulumi.Input[str]]:
    """nginx's configuration, and the password file of the monitoring pages it serves."""
    config_files: dict[str, pulumi.Input[str]] = {"default.conf": proxy_conf}
    if args.monitoring is not None and args.monitoring_password is not None and (
        args.monitoring.prometheus_host or args.monitoring.alertmanager_host
    ):
        htpasswd = args.monitoring_password.apply(render.render_htpasswd)
        config_files[render.HTPASSWD_PATH.rsplit("/", 1)[1]] = pulumi.Output.secret(htpasswd)
    return config_files


def _ports(settings: ProxySettings, tls_on: bool) -> list[docker.ContainerPortArgs]:
    """The proxy's published ports: HTTP, and with TLS HTTPS and the federation port."""
    ports = [docker.ContainerPortArgs(internal=80, external=settings.http_port, ip=settings.bind)]
    if tls_on:
        ports.append(docker.ContainerPortArgs(internal=443, external=settings.https_port, ip=settings.bind))
    if tls_on and settings.federation_port:
        ports.append(
            docker.ContainerPortArgs(internal=settings.federation_port, external=settings.federation_port, ip=settings.bind)
        )
    return ports
