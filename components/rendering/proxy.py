"""The reverse proxy's nginx configuration, from the routes the other components expose."""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from components.rendering import NGINX_TEMP_PATHS
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
    """The conf.d file of the proxy: upstreams, shared TLS settings and one server per host group."""
    groups = _host_groups(matrix, voicegrow, options) + _monitoring_groups(monitoring)
    if options.tls:
        servers = [_redirect_server([host for group in groups for host in group.hosts], options)]
        servers += [_tls_server(group, options) for group in groups]
    else:
        servers = [
            _server_block(["listen 80;", f"server_name {' '.join(group.hosts)};", *group.directives], group.locations)
            for group in groups
        ]
    upstreams = _upstreams(matrix, voicegrow) + _monitoring_upstreams(monitoring)
    user_maps = [_USER_FROM_ACCESS_TOKEN] if matrix and any(route.by_user for route in matrix.worker_routes) else []
    zones = [_rate_limit_zone(limit) for limit in options.matrix_rate_limits] if matrix else []
    return "\n".join(
        [NGINX_TEMP_PATHS + _http_settings(options), *user_maps, *zones, *upstreams, *_default_servers(options), *servers]
    )


def _rate_limit_zone(limit: RateLimit) -> str:
    """A zone counting, per client address, only the requests to the limit's endpoints: the key of
    every other request is empty, and nginx does not count those."""
    endpoints = MATRIX_RATE_LIMITED_ENDPOINTS[limit.name]
    return (
        f"map $uri $matrix_{limit.name}_client {{\n"
        '    default "";\n'
        f'    "~{endpoints}" $binary_remote_addr;\n'
        "}\n"
        f"limit_req_zone $matrix_{limit.name}_client zone=matrix_{limit.name}:10m rate={limit.rate};\n"
    )


def _rate_limit_directives(limits: list[RateLimit]) -> list[str]:
    """The Matrix hosts' server-level limits, answered as Synapse answers its own: 429, M_LIMIT_EXCEEDED."""
    if not limits:
        return []
    return [
        *[f"limit_req zone=matrix_{limit.name} burst={limit.burst} nodelay;" for limit in limits],
        "limit_req_status 429;",
        "error_page 429 = @matrix_rate_limited;",
    ]


# The user part of the access token (Synapse's are `syt_<base64 localpart>_...`), from the
# Authorization header or the access_token parameter, as the worker documentation does: the
# key that keeps one user's /sync on one worker.
_USER_FROM_ACCESS_TOKEN = """map $arg_access_token $synapse_user_from_parameter {
    default $arg_access_token;
    "~syt_(?<username>.*?)_.*" $username;
}
map $http_authorization $synapse_user {
    default $http_authorization;
    "~Bearer syt_(?<username>.*?)_.*" $username;
    "" $synapse_user_from_parameter;
}
"""


@dataclass(frozen=True)
class _HostGroup:
    """Hosts that share one server block, and what it routes."""

    hosts: list[str]
    locations: list[str]
    extra_port: int | None = None
    directives: list[str] = field(default_factory=list)
    """Server-level directives beside the listeners, names and TLS."""


def _host_groups(matrix: MatrixRoute | None, voicegrow: VoiceGrowRoutes | None, options: ProxyOptions) -> list[_HostGroup]:
    groups = []
    if matrix:
        groups.append(
            _HostGroup(
                matrix.hosts,
                _matrix_locations(matrix, options),
                options.federation_port,
                _rate_limit_directives(options.matrix_rate_limits),
            )
        )
    if voicegrow and voicegrow.ws_host:
        groups.append(_HostGroup([voicegrow.ws_host], _websocket_location("voicegrow_ws", 86400)))
    if voicegrow and voicegrow.api_host:
        groups.append(_HostGroup([voicegrow.api_host], _api_location()))
    if voicegrow and voicegrow.console_host:
        groups.append(_HostGroup([voicegrow.console_host], _websocket_location("minio_console", 3600)))
    return groups


def _monitoring_groups(monitoring: MonitoringRoutes | None) -> list[_HostGroup]:
    """Grafana (its own login), Prometheus and Alertmanager (the proxy's login), each on its host."""
    if monitoring is None:
        return []
    login = f'        auth_basic "monitoring";\n        auth_basic_user_file {HTPASSWD_PATH};\n'
    hosts = [
        (monitoring.grafana_host, "grafana", ""),
        (monitoring.prometheus_host, "prometheus", login),
        (monitoring.alertmanager_host, "alertmanager", login),
    ]
    return [
        _HostGroup(
            [host],
            [
                "    location / {\n"
                f"{access}"
                f"        proxy_pass http://{upstream};\n"
                "        proxy_http_version 1.1;\n"
                "        proxy_set_header Upgrade $http_upgrade;\n"
                "        proxy_set_header Connection $connection_upgrade;\n"
                f"{_forwarded_headers()}"
                "    }\n"
            ],
        )
        for host, upstream, access in hosts
        if host
    ]


def _monitoring_upstreams(monitoring: MonitoringRoutes | None) -> list[str]:
    if monitoring is None:
        return []
    upstreams = [
        (monitoring.grafana_host, "grafana", monitoring.grafana_upstream),
        (monitoring.prometheus_host, "prometheus", monitoring.prometheus_upstream),
        (monitoring.alertmanager_host, "alertmanager", monitoring.alertmanager_upstream),
    ]
    return [_upstream(name, [server], failover=False) for host, name, server in upstreams if host]


def _http_settings(options: ProxyOptions) -> str:
    lines = [
        "server_tokens off;",
        "map $http_upgrade $connection_upgrade {\n    default upgrade;\n    '' close;\n}",
    ]
    if options.tls:
        lines += [
            "ssl_protocols TLSv1.2 TLSv1.3;",
            f"ssl_ciphers {CIPHERS};",
            "ssl_prefer_server_ciphers off;",
            "ssl_session_cache shared:SSL:10m;",
            "ssl_session_timeout 1d;",
            "ssl_session_tickets off;",
        ]
    return "\n".join(lines) + "\n"


def _upstreams(matrix: MatrixRoute | None, voicegrow: VoiceGrowRoutes | None) -> list[str]:
    upstreams = []
    if matrix:
        upstreams.append(_upstream("synapse", [matrix.synapse_upstream], failover=False))
        upstreams.append(_upstream("wellknown", [matrix.wellknown_upstream], failover=False))
        upstreams += [
            _upstream(route.upstream, route.servers, failover=len(route.servers) > 1, hash_by_user=route.by_user)
            for route in matrix.worker_routes
        ]
    if voicegrow and voicegrow.ws_host:
        upstreams.append(_upstream("voicegrow_ws", voicegrow.ws_upstreams, failover=True))
    if voicegrow and voicegrow.api_host:
        upstreams.append(_upstream("voicegrow_api", voicegrow.http_upstreams, failover=True))
    if voicegrow and voicegrow.console_host:
        upstreams.append(_upstream("minio_console", [voicegrow.console_upstream], failover=False))
    return upstreams


def _upstream(name: str, servers: list[str], failover: bool, hash_by_user: bool = False) -> str:
    # A replica that fails is left out for 10 s while the others take its requests.
    health = " max_fails=1 fail_timeout=10s" if failover else ""
    lines = (["    hash $synapse_user consistent;"] if hash_by_user else []) + [f"    server {server}{health};" for server in servers]
    return f"upstream {name} {{\n" + "\n".join(lines) + "\n    keepalive 16;\n}\n"


def _default_servers(options: ProxyOptions) -> list[str]:
    """What a request for a name the proxy does not serve gets: on port 80 the connection closed
    without an answer (444; `/healthz` answers for the container's health check), and with TLS
    no handshake at all, so that no site is served under a stranger's name or certificate."""
    health = "    location = /healthz {\n        access_log off;\n        return 200 \"ok\\n\";\n    }\n"
    refuse = "    location / {\n        return 444;\n    }\n"
    servers = [_server_block(["listen 80 default_server;", "server_name _;"], [health, refuse])]
    if options.tls:
        ports = [443] + ([options.federation_port] if options.federation_port else [])
        servers.append(
            _server_block([f"listen {port} ssl http2 default_server;" for port in ports] + ["ssl_reject_handshake on;"], [])
        )
    return servers


def _redirect_server(hosts: list[str], options: ProxyOptions) -> str:
    """Port 80 of the served names: ACME's challenges, then a redirect to HTTPS."""
    locations = []
    if options.acme:
        locations.append(f"    location /.well-known/acme-challenge/ {{\n        root {ACME_WEBROOT};\n    }}\n")
    locations.append("    location / {\n        return 301 https://$host$request_uri;\n    }\n")
    return _server_block(["listen 80;", f"server_name {' '.join(hosts)};"], locations)


def _tls_server(group: _HostGroup, options: ProxyOptions) -> str:
    # `listen ... http2` rather than `http2 on`: the older form is also what nginx 1.22 reads.
    listens = ["listen 443 ssl http2;"] + ([f"listen {group.extra_port} ssl http2;"] if group.extra_port else [])
    subdomains = "; includeSubDomains" if options.hsts_include_subdomains else ""
    directives = listens + [
        f"server_name {' '.join(group.hosts)};",
        f"ssl_certificate {CERTIFICATE_PATH};",
        f"ssl_certificate_key {PRIVATE_KEY_PATH};",
        f'add_header Strict-Transport-Security "max-age=63072000{subdomains}" always;',
        'add_header X-Content-Type-Options "nosniff" always;',
        'add_header X-Frame-Options "DENY" always;',
        *group.directives,
    ]
    return _server_block(directives, group.locations)


def _server_block(directives: list[str], locations: list[str]) -> str:
    return "server {\n" + "".join(f"    {directive}\n" for directive in directives) + "".join(locations) + "}\n"


def _synapse_proxy(max_body_size: str, upstream: str = "synapse") -> str:
    # As Synapse's reverse-proxy guide asks: no URI after the upstream (nginx would re-encode it
    # and break federation signatures), the client's address and scheme, HTTP/1.1 for chunking.
    return (
        f"        proxy_pass http://{upstream};\n"
        "        proxy_set_header X-Forwarded-For $remote_addr;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        proxy_set_header Host $host;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        f"        client_max_body_size {max_body_size};\n"
    )


def _matrix_locations(matrix: MatrixRoute, options: ProxyOptions) -> list[str]:
    if options.admin_allowlist:
        access = "".join(f"        allow {entry};\n" for entry in options.admin_allowlist) + "        deny all;\n"
        admin = f"    location /_synapse/admin {{\n{access}{_synapse_proxy(matrix.max_body_size)}    }}\n"
    else:
        admin = "    location /_synapse/admin {\n        return 403;\n    }\n"
    # Regular expressions are matched in order: each worker's endpoints before the main process's.
    workers = [
        f'    location ~ "{endpoint}" {{\n{_synapse_proxy(matrix.max_body_size, route.upstream)}    }}\n'
        for route in matrix.worker_routes
        for endpoint in route.endpoints
    ]
    return [
        *workers,
        f"    location ~ ^(/_matrix|/_synapse/client) {{\n{_synapse_proxy(matrix.max_body_size)}    }}\n",
        admin,
        "    location /.well-known/matrix/ {\n"
        "        proxy_pass http://wellknown;\n"
        "        proxy_set_header Host $host;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "    }\n",
        "    location / {\n        return 404;\n    }\n",
        *([_RATE_LIMITED_LOCATION] if options.matrix_rate_limits else []),
    ]


_RATE_LIMITED_LOCATION = (
    "    location @matrix_rate_limited {\n"
    "        default_type application/json;\n"
    f"        return 429 '{RATE_LIMITED_BODY}';\n"
    "    }\n"
)


def _forwarded_headers() -> str:
    return (
        "        proxy_set_header Host $host;\n"
        "        proxy_set_header X-Real-IP $remote_addr;\n"
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
    )


def _websocket_location(upstream: str, read_timeout: int) -> list[str]:
    return [
        "    location / {\n"
        f"        proxy_pass http://{upstream};\n"
        "        proxy_http_version 1.1;\n"
        "        proxy_set_header Upgrade $http_upgrade;\n"
        "        proxy_set_header Connection $connection_upgrade;\n"
        f"{_forwarded_headers()}"
        f"        proxy_read_timeout {read_timeout};\n"
        f"        proxy_send_timeout {read_timeout};\n"
        "    }\n"
    ]


def _api_location() -> list[str]:
    return [
        "    location / {\n"
        "        proxy_pass http://voicegrow_api;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        f"{_forwarded_headers()}"
        # A request that fails on one replica is retried on the next.
        "        proxy_next_upstream error timeout http_502 http_503 http_504;\n"
        # Replicas share the host's bridge: a connection that takes longer is not coming.
        "        proxy_connect_timeout 2s;\n"
        "    }\n"
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
