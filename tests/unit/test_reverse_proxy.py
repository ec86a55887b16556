"""ReverseProxy under mocks: routes come from the components, TLS per environment, admin kept inside."""

from __future__ import annotations

import re
import shlex

import pytest

from components.changes import render_reload_when_loadable
from config import ConfigError
from tests.certificates import operator_tls_secrets, proxied_hosts
from tests.program import STACKS
from tests.unit.conftest import Evaluate, Evaluation

MODES = [pytest.param(False, id="up"), pytest.param(True, id="preview")]


def _conf(evaluation: Evaluation) -> str:
    return evaluation.mocks.files("proxy")["/etc/nginx/conf.d/default.conf"]


def _server_block(conf: str, host: str) -> str:
    for block in re.findall(r"server \{.*?\n\}\n", conf, re.S):
        if re.search(rf"server_name [^;]*\b{re.escape(host)}\b", block) and "listen 443" in block:
            return block
    raise AssertionError(f"no TLS server block for {host}")


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_declares_the_proxy(evaluate: Evaluate, stack: str, preview: bool) -> None:
    proxy = evaluate(stack, preview=preview).container("proxy")
    assert proxy.value("restart") == "unless-stopped"
    assert proxy.value("healthcheck")["tests"][-1] == "http://127.0.0.1/healthz"


@pytest.mark.parametrize(("stack", "ports"), [("dev", [80]), ("test", [80, 443]), ("prod", [80, 443])])
def test_published_ports_follow_tls(evaluate: Evaluate, stack: str, ports: list[int]) -> None:
    assert [p["external"] for p in evaluate(stack).container("proxy").value("ports")] == ports




def test_dev_serves_plain_http_without_certificates(evaluate: Evaluate) -> None:
    evaluation = evaluate("dev")
    conf = _conf(evaluation)
    assert "listen 443" not in conf and "return 301" not in conf
    assert set(evaluation.mocks.files("proxy")) == {"/etc/nginx/conf.d/default.conf"}


def test_tls_redirects_port_80_to_https(evaluate: Evaluate) -> None:
    assert "return 301 https://$host$request_uri;" in _conf(evaluate("test"))


def test_hsts_covers_the_served_hosts_and_their_subdomains_only_when_asked(evaluate: Evaluate) -> None:
    assert 'Strict-Transport-Security "max-age=63072000" always;' in _conf(evaluate("prod"))
    asked = _conf(evaluate("prod", overrides={"proxy": {"hsts_include_subdomains": True}}))
    assert 'Strict-Transport-Security "max-age=63072000; includeSubDomains" always;' in asked


@pytest.mark.parametrize("stack", STACKS)
def test_the_matrix_hosts_limit_login_registration_and_upload_per_address(evaluate: Evaluate, stack: str) -> None:
    conf = _conf(evaluate(stack))
    for zone, rate, burst in (("login", "10r/m", 10), ("registration", "10r/m", 10), ("media_upload", "30r/m", 20)):
        assert f"limit_req_zone $matrix_{zone}_client zone=matrix_{zone}:10m rate={rate};" in conf
        assert f"limit_req zone=matrix_{zone} burst={burst} nodelay;" in conf
    assert "limit_req_status 429;" in conf and "error_page 429 = @matrix_rate_limited;" in conf


def test_edge_limits_are_settable_and_can_be_turned_off(evaluate: Evaluate) -> None:
    relaxed = _conf(evaluate("prod", overrides={"proxy": {"rate_limits": {"login": {"rate": "2r/s", "burst": 50}}}}))
    assert "zone=matrix_login:10m rate=2r/s;" in relaxed and "limit_req zone=matrix_login burst=50 nodelay;" in relaxed
    assert "limit_req" not in _conf(evaluate("prod", overrides={"proxy": {"rate_limits": {"enabled": False}}}))


def test_an_edge_rate_nginx_cannot_read_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:proxy\.rate_limits\.login\.rate"):
        evaluate("prod", overrides={"proxy": {"rate_limits": {"login": {"rate": "10 per minute", "burst": 5}}}})


@pytest.mark.parametrize("stack", STACKS)
def test_a_name_the_proxy_does_not_serve_is_refused(evaluate: Evaluate, stack: str) -> None:
    conf = _conf(evaluate(stack))
    assert "listen 80 default_server;\n    server_name _;" in conf and "return 444;" in conf
    if "listen 443" in conf:
        assert "listen 443 ssl http2 default_server;\n    ssl_reject_handshake on;" in conf


def test_tls_allows_only_tls12_and_tls13_with_a_session_cache(evaluate: Evaluate) -> None:
    conf = _conf(evaluate("test"))
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "ssl_session_cache shared:SSL:10m;" in conf


@pytest.mark.parametrize("header", ["Strict-Transport-Security", "X-Content-Type-Options \"nosniff\"", "X-Frame-Options \"DENY\""])
def test_every_tls_server_sends_security_headers(evaluate: Evaluate, header: str) -> None:
    conf = _conf(evaluate("prod"))
    for host in ("matrix.example.com", "ws.voicegrow.example.com", "api.voicegrow.example.com"):
        assert header in _server_block(conf, host), host


def test_matrix_routes_follow_synapse_reverse_proxy_guide(evaluate: Evaluate) -> None:
    block = _server_block(_conf(evaluate("prod")), "matrix.example.com")
    location = block[block.index("location ~ ^(/_matrix|/_synapse/client)"):]
    assert "proxy_pass http://synapse;" in location
    for header in ("X-Forwarded-For $remote_addr", "X-Forwarded-Proto $scheme", "Host $host"):
        assert f"proxy_set_header {header};" in location
    assert "proxy_http_version 1.1;" in location


def test_upload_limit_equals_synapse_max_upload_size(evaluate: Evaluate) -> None:
    assert "client_max_body_size 8M;" in _conf(evaluate("test"))
    assert "client_max_body_size 100M;" in _conf(evaluate("prod"))


def test_well_known_is_routed_on_the_server_name_host(evaluate: Evaluate) -> None:
    block = _server_block(_conf(evaluate("prod")), "example.com")
    assert "location /.well-known/matrix/" in block and "proxy_pass http://wellknown;" in block


def test_synapse_admin_is_refused_without_an_allowlist(evaluate: Evaluate) -> None:
    assert "location /_synapse/admin {\n        return 403;" in _conf(evaluate("prod"))


def test_synapse_admin_is_allowed_for_the_allowlist_only(evaluate: Evaluate) -> None:
    conf = _conf(evaluate("prod", overrides={"proxy": {"admin_allowlist": ["203.0.113.0/24"]}}))
    admin = conf[conf.index("location /_synapse/admin"):]
    assert admin.index("allow 203.0.113.0/24;") < admin.index("deny all;") < admin.index("proxy_pass http://synapse;")


def test_federation_port_is_an_option(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", overrides={"proxy": {"federation_port": 8448}})
    assert "listen 8448 ssl http2;" in _server_block(_conf(evaluation), "matrix.example.com")
    assert 8448 in [p["external"] for p in evaluation.container("proxy").value("ports")]


def test_websocket_host_upgrades_with_a_day_long_read_timeout(evaluate: Evaluate) -> None:
    block = _server_block(_conf(evaluate("prod")), "ws.voicegrow.example.com")
    assert "proxy_set_header Upgrade $http_upgrade;" in block
    assert "proxy_set_header Connection $connection_upgrade;" in block
    assert "proxy_read_timeout 86400;" in block


def test_replicas_are_load_balanced_with_failover(evaluate: Evaluate) -> None:
    conf = _conf(evaluate("prod"))
    assert "upstream voicegrow_ws {\n    server server-1:4399 max_fails=1 fail_timeout=10s;\n    server server-2:4399 max_fails=1 fail_timeout=10s;" in conf
    assert "upstream voicegrow_api {\n    server server-1:8000 max_fails=1 fail_timeout=10s;\n    server server-2:8000 max_fails=1 fail_timeout=10s;" in conf
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in conf


def test_upstreams_follow_the_replica_count(evaluate: Evaluate) -> None:
    assert "server server-3:8000" in _conf(evaluate("prod", overrides={"voicegrow": {"replicas": 3}}))


def test_minio_console_is_off_by_default(evaluate: Evaluate) -> None:
    assert "minio_console" not in _conf(evaluate("prod"))


def test_minio_console_host_is_routed_when_set(evaluate: Evaluate) -> None:
    conf = _conf(evaluate("prod", overrides={"voicegrow": {"console_host": "console.voicegrow.example.com"}}))
    assert "proxy_pass http://minio_console;" in _server_block(conf, "console.voicegrow.example.com")


def test_self_signed_mode_uploads_a_certificate_for_every_host(evaluate: Evaluate) -> None:
    evaluation = evaluate("test")
    request = evaluation.mocks.named("proxy-csr")
    assert request.value("dnsNames") == [
        "test.matrix.example.com", "ws.test.voicegrow.example.com", "api.test.voicegrow.example.com"
    ]
    assert {"/etc/nginx/tls/fullchain.pem", "/etc/nginx/tls/privkey.pem"} <= set(evaluation.mocks.files("proxy"))


def test_self_signed_mode_exports_the_ca_certificate(evaluate: Evaluate) -> None:
    value, secret = evaluate("test").output("proxy_ca_certificate")
    assert value == "CERTIFICATE proxy-ca\n" and not secret


def test_private_key_file_is_secret(evaluate: Evaluate) -> None:
    assert evaluate("test").mocks.named("proxy-files").is_secret("uploads")


def test_files_mode_uploads_the_operators_certificate(evaluate: Evaluate) -> None:
    files = operator_tls_secrets(proxied_hosts("prod"))
    evaluation = evaluate("prod", overrides={"tls": "files"}, secrets=files)
    uploads = evaluation.mocks.files("proxy")
    assert uploads["/etc/nginx/tls/fullchain.pem"] == files["tls_certificate"]
    assert uploads["/etc/nginx/tls/privkey.pem"] == files["tls_private_key"]


def test_files_mode_requires_the_certificate_secrets(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match="selfhosted:tls_certificate is required when tls is 'files'"):
        evaluate("prod", overrides={"tls": "files"})


def test_acme_mode_runs_certbot_with_the_webroot_and_the_production_endpoint(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    envs = dict(e.split("=", 1) for e in evaluation.container("proxy-acme").value("envs"))
    assert envs["ACME_SERVER"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert envs["ACME_DOMAINS"] == "matrix.example.com example.com ws.voicegrow.example.com api.voicegrow.example.com"
    assert "location /.well-known/acme-challenge/ {\n        root /var/www/acme;" in _conf(evaluation)


def test_acme_staging_endpoint_is_selectable(evaluate: Evaluate) -> None:
    envs = evaluate("prod", overrides={"proxy": {"acme_staging": True}}).container("proxy-acme").value("envs")
    assert "ACME_SERVER=https://acme-staging-v02.api.letsencrypt.org/directory" in envs


def test_another_acme_directory_is_selectable_with_its_own_trust_root(evaluate: Evaluate) -> None:
    ca = operator_tls_secrets(["ca.internal.example"])["tls_certificate"]
    proxy = {"acme_directory": "https://ca.internal.example/acme/acme/directory", "acme_directory_ca": ca}
    evaluation = evaluate("prod", overrides={"proxy": proxy})
    envs = dict(e.split("=", 1) for e in evaluation.container("proxy-acme").value("envs"))
    assert envs["ACME_SERVER"] == "https://ca.internal.example/acme/acme/directory"
    assert envs["REQUESTS_CA_BUNDLE"] == "/opt/acme/directory-ca.pem"
    assert evaluation.mocks.files("proxy-acme")["/opt/acme/directory-ca.pem"] == ca


def test_lets_encrypt_needs_no_extra_trust_root(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert not any(e.startswith("REQUESTS_CA_BUNDLE=") for e in evaluation.container("proxy-acme").value("envs"))
    assert list(evaluation.mocks.files("proxy-acme")) == ["/opt/acme/acme.sh"]


def test_acme_mode_reloads_nginx_when_the_certificate_changes(evaluate: Evaluate) -> None:
    command = evaluate("prod").container("proxy").value("command")
    assert "nginx -s reload" in command[-1] and "-nt /tmp/tls-loaded" in command[-1]


def test_acme_requires_an_email(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match="selfhosted:proxy.acme_email is required when tls is 'acme'"):
        evaluate("prod", overrides={"proxy": {"acme_email": None}})


def test_replacing_an_upstream_container_other_than_a_replica_replaces_the_proxy(evaluate: Evaluate) -> None:
    # Synapse's routed workers too: the proxy resolves their addresses when it starts.
    envs = evaluate("prod").container("proxy").value("envs")
    workers = ",".join(f"synapse-{name}-id" for name in ("sync1", "sync2", "sync3", "client-reader1", "media1"))
    assert envs == [f"UPSTREAM_CONTAINERS=synapse-id,synapse-wellknown-id,{workers},voicegrow-minio-id"]


def test_a_replaced_replica_reloads_the_proxy(evaluate: Evaluate) -> None:
    commands = {command.name: command for command in evaluate("prod").mocks.of_type("command:local:Command")}
    for replica in (1, 2):
        reload = commands[f"voicegrow-server-{replica}-proxy-reload"]
        assert reload.value("create").endswith(
            f"exec docker exec selfhosted-prod-proxy /bin/sh -c {shlex.quote(render_reload_when_loadable())}"
        )
        assert reload.value("triggers") == [f"voicegrow-server-{replica}-id"]


def test_proxy_urls_are_exported_per_host(evaluate: Evaluate) -> None:
    urls, _ = evaluate("prod").output("proxy_urls")
    assert urls["matrix.example.com"] == "https://matrix.example.com/"
    assert urls["ws.voicegrow.example.com"] == "https://ws.voicegrow.example.com/"


def test_disabled_proxy_declares_no_container(evaluate: Evaluate) -> None:
    containers = {c.name for c in evaluate("prod", overrides={"proxy": {"enabled": False}}).mocks.of_type("docker:index/container:Container")}
    assert "proxy" not in containers and "proxy-acme" not in containers


def test_bad_admin_allowlist_entry_is_rejected(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match="admin_allowlist entries must be addresses or CIDRs"):
        evaluate("prod", overrides={"proxy": {"admin_allowlist": ["office"]}})
