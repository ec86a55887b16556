"""The reverse proxy's nginx configuration, from the routes the other components expose."""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from components.rendering import NGINX_TEMP_PATHS, render_template
from components.rendering.synapse_workers import WorkerRoute

TLS_DIR = "/etc/nginx/tls"
CERTIFICATE_FILE = "fullchain.pem"
PRIVATE_KEY_FILE = "privkey.pem"
CERTIFICATE_PATH = f"{TLS_DIR}/{CERTIFICATE_FILE}"
PRIVATE_KEY_PATH = f"{TLS_DIR}/{PRIVATE_KEY_FILE}"
ACME_WEBROOT = "/var/www/acme"
CONFIG_DIR = "/etc/nginx/conf.d"
# Beside the configuration, on its read-only volume; nginx includes only conf.d/*.conf.
HTPASSWD_PATH = f"{CONFIG_DIR}/monitoring.htpasswd"
MONITORING_USER = "admin"
HEALTH_PATH = "/healthz"
# Modern ciphers for TLS 1.2 (TLS 1.3 suites are not configurable here and are all strong).
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


@dataclass(frozen=True)
class MatrixRoute:
    """What SynapseStack tells the proxy: its hosts, upstreams and upload limit."""

    server_name: str
    public_host: str
    synapse_upstream: str
    wellknown_upstream: str
    max_body_size: str
    worker_routes: list[WorkerRoute] = field(default_factory=list)
    """Endpoints Synapse's workers serve, ahead of the main process (empty: one process serves all)."""

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys([self.public_host, self.server_name]))


@dataclass(frozen=True)
class VoiceGrowRoutes:
    """What VoiceGrowStack tells the proxy: public hosts (None = not routed) and replica upstreams."""

    ws_host: str | None
    api_host: str | None
    console_host: str | None
    ws_upstreams: list[str]
    http_upstreams: list[str]
    console_upstream: str

    @property
    def hosts(self) -> list[str]:
        return [host for host in (self.ws_host, self.api_host, self.console_host) if host]


@dataclass(frozen=True)
class MonitoringRoutes:
    """What Monitoring tells the proxy: its public hosts (None = not routed) and upstreams."""

    grafana_host: str | None
    prometheus_host: str | None
    alertmanager_host: str | None
    grafana_upstream: str
    prometheus_upstream: str
    alertmanager_upstream: str

    @property
    def hosts(self) -> list[str]:
        return [host for host in (self.grafana_host, self.prometheus_host, self.alertmanager_host) if host]


def render_htpasswd(password: str) -> str:
    """The login of Prometheus and Alertmanager behind the proxy ({SHA}: the same text every deploy)."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{MONITORING_USER}:{{SHA}}{digest}\n"


MATRIX_RATE_LIMITED_ENDPOINTS = {
    "login": r"^/_matrix/client/(r0|v3|unstable)/login(/|$)",
    "registration": r"^/_matrix/client/(r0|v3|unstable)/register(/|$)",
    "media_upload": r"^/_matrix/media/(r0|v1|v3)/(upload|create)(/|$)",
}
"""The Matrix endpoints the proxy limits per client address, by the name of their limit."""
RATE_LIMITED_BODY = '{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests from this address: try again later"}'


@dataclass(frozen=True)
class RateLimit:
    """A limit on one group of endpoints (MATRIX_RATE_LIMITED_ENDPOINTS): nginx's rate, e.g. '10r/m', and burst."""

    name: str
    rate: str
    burst: int


@dataclass(frozen=True)
class ProxyOptions:
    """How the proxy listens and secures its routes."""

    tls: bool
    acme: bool = False
    federation_port: int | None = None
    admin_allowlist: list[str] = field(default_factory=list)
    hsts_include_subdomains: bool = False
    """HSTS for every subdomain of the hosts too: only for an operator whose every subdomain serves HTTPS."""
    matrix_rate_limits: list[RateLimit] = field(default_factory=list)


def proxied_hosts(
    matrix: MatrixRoute | None, voicegrow: VoiceGrowRoutes | None, monitoring: MonitoringRoutes | None = None
) -> list[str]:
    """Every host the proxy answers for: the names its certificate must carry."""
    return (matrix.hosts if matrix else []) + (voicegrow.hosts if voicegrow else []) + (monitoring.hosts if monitoring else [])


def render_proxy_conf(
    matrix: MatrixRoute | None,
    voicegrow: VoiceGrowRoutes | None,
    options: ProxyOptions,
    monitoring: MonitoringRoutes | None = None,
) -> str:
    """The conf.d file of the proxy (templates/proxy.conf.j2): upstreams, shared TLS settings and
    one server per host group."""
    groups = _host_groups(matrix, voicegrow, options) + _monitoring_groups(monitoring)
    return render_template(
        "proxy.conf.j2",
        nginx_temp_paths=NGINX_TEMP_PATHS,
        tls=options.tls,
        acme=options.acme,
        ciphers=CIPHERS,
        user_maps=bool(matrix and any(route.by_user for route in matrix.worker_routes)),
        zones=[
            {"name": limit.name, "endpoints": MATRIX_RATE_LIMITED_ENDPOINTS[limit.name], "rate": limit.rate}
            for limit in (options.matrix_rate_limits if matrix else [])
        ],
        upstreams=_upstreams(matrix, voicegrow) + _monitoring_upstreams(monitoring),
        health_path=HEALTH_PATH,
        tls_ports=[443] + ([options.federation_port] if options.federation_port else []),
        all_hosts=[host for group in groups for host in group.hosts],
        acme_webroot=ACME_WEBROOT,
        groups=groups,
        certificate_path=CERTIFICATE_PATH,
        private_key_path=PRIVATE_KEY_PATH,
        hsts_include_subdomains=options.hsts_include_subdomains,
        rate_limited_body=RATE_LIMITED_BODY,
        htpasswd_path=HTPASSWD_PATH,
    )


@dataclass(frozen=True)
class _Upstream:
    name: str
    servers: list[str]
    failover: bool
    """A replica that fails is left out for a while (several servers share the requests)."""
    hash_by_user: bool = False


@dataclass(frozen=True)
class _Location:
    """One location of a server block, by kind (the template's `location` macro)."""

    kind: str
    match: str = ""
    upstream: str = ""
    max_body_size: str = ""
    allowlist: tuple[str, ...] = ()
    timeout: int = 0
    login: bool = False


@dataclass(frozen=True)
class _HostGroup:
    """Hosts that share one server block, and what it routes."""

    hosts: list[str]
    locations: list[_Location]
    extra_port: int | None = None
    rate_limits: list[RateLimit] = field(default_factory=list)


def _host_groups(matrix: MatrixRoute | None, voicegrow: VoiceGrowRoutes | None, options: ProxyOptions) -> list[_HostGroup]:
    groups = []
    if matrix:
        groups.append(
            _HostGroup(matrix.hosts, _matrix_locations(matrix, options), options.federation_port, options.matrix_rate_limits)
        )
    if voicegrow and voicegrow.ws_host:
        groups.append(_HostGroup([voicegrow.ws_host], [_Location("websocket", upstream="voicegrow_ws", timeout=86400)]))
    if voicegrow and voicegrow.api_host:
        groups.append(_HostGroup([voicegrow.api_host], [_Location("api")]))
    if voicegrow and voicegrow.console_host:
        groups.append(_HostGroup([voicegrow.console_host], [_Location("websocket", upstream="minio_console", timeout=3600)]))
    return groups


def _monitoring_groups(monitoring: MonitoringRoutes | None) -> list[_HostGroup]:
    """Grafana (its own login), Prometheus and Alertmanager (the proxy's login), each on its host."""
    if monitoring is None:
        return []
    hosts = [
        (monitoring.grafana_host, "grafana", False),
        (monitoring.prometheus_host, "prometheus", True),
        (monitoring.alertmanager_host, "alertmanager", True),
    ]
    return [_HostGroup([host], [_Location("monitoring", upstream=upstream, login=login)]) for host, upstream, login in hosts if host]


def _monitoring_upstreams(monitoring: MonitoringRoutes | None) -> list[_Upstream]:
    if monitoring is None:
        return []
    upstreams = [
        (monitoring.grafana_host, "grafana", monitoring.grafana_upstream),
        (monitoring.prometheus_host, "prometheus", monitoring.prometheus_upstream),
        (monitoring.alertmanager_host, "alertmanager", monitoring.alertmanager_upstream),
    ]
    return [_Upstream(name, [server], failover=False) for host, name, server in upstreams if host]


def _upstreams(matrix: MatrixRoute | None, voicegrow: VoiceGrowRoutes | None) -> list[_Upstream]:
    upstreams = []
    if matrix:
        upstreams.append(_Upstream("synapse", [matrix.synapse_upstream], failover=False))
        upstreams.append(_Upstream("wellknown", [matrix.wellknown_upstream], failover=False))
        upstreams += [
            _Upstream(route.upstream, route.servers, failover=len(route.servers) > 1, hash_by_user=route.by_user)
            for route in matrix.worker_routes
        ]
    if voicegrow and voicegrow.ws_host:
        upstreams.append(_Upstream("voicegrow_ws", voicegrow.ws_upstreams, failover=True))
    if voicegrow and voicegrow.api_host:
        upstreams.append(_Upstream("voicegrow_api", voicegrow.http_upstreams, failover=True))
    if voicegrow and voicegrow.console_host:
        upstreams.append(_Upstream("minio_console", [voicegrow.console_upstream], failover=False))
    return upstreams


def _matrix_locations(matrix: MatrixRoute, options: ProxyOptions) -> list[_Location]:
    # Regular expressions are matched in order: each worker's endpoints before the main process's.
    workers = [
        _Location("synapse", match=f'~ "{endpoint}"', upstream=route.upstream, max_body_size=matrix.max_body_size)
        for route in matrix.worker_routes
        for endpoint in route.endpoints
    ]
    return [
        *workers,
        _Location("synapse", match="~ ^(/_matrix|/_synapse/client)", upstream="synapse", max_body_size=matrix.max_body_size),
        _Location("admin", allowlist=tuple(options.admin_allowlist), max_body_size=matrix.max_body_size),
        _Location("wellknown"),
        _Location("not_found"),
        *([_Location("rate_limited")] if options.matrix_rate_limits else []),
    ]


UPSTREAM_WATCH_SECONDS = 5
"""On Swarm, how often the proxy looks up its upstreams' addresses."""


def upstream_hosts(conf: str) -> list[str]:
    """The host names the upstreams of a rendered proxy configuration name, each once."""
    return sorted(set(re.findall(r"^ +server ([A-Za-z0-9.-]+):\d+", conf, re.MULTILINE)))


def render_upstream_watch(hosts: Sequence[str]) -> str:
    """Shell loop that reloads nginx whenever one of `hosts` resolves to other addresses.

    On Swarm a task that is replaced (after a failed health check, a crash, a drained node, an
    update) comes back at a new address, and nginx resolves upstream names only when it loads its
    configuration. A reload that fails (a name without a running task) is tried again next time.
    """
    names = " ".join(shlex.quote(host) for host in hosts)
    return (
        'known=""; '
        f"while sleep {UPSTREAM_WATCH_SECONDS}; do "
        f'now="$(for host in {names}; do getent hosts "$host"; done | sort)"; '
        'if [ "$now" != "$known" ]; then if [ -z "$known" ] || nginx -s reload; then known="$now"; fi; fi; '
        "done"
    )
