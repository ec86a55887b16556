"""The host firewall: settings, the rules rendered from the stack's own ports, and the remote command that applies them."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from components.firewall import RUN_AS_ROOT
from components.rendering.firewall import allowed_ports, render_after_rules_block, render_firewall_script
from config import ConfigError, StackSettings, resolve_settings
from tests.unit.conftest import Evaluate
from tests.stack_config import ALERT_RECEIVERS, HOST_KEY

SYNAPSE = {"server_name": "example.com", "admin_username": "admin"}
VOICEGROW = {"enabled": True, "server_image": "registry.example.com/voicegrow/server:1.0.0"}
REMOTE = {"docker": {"host": "ssh://deploy@vps.example.com"}}
# prod asks for the host's key with a firewall.
REMOTE_PROD = {**REMOTE, "firewall": {"host_key": HOST_KEY}}
REMOTE_COMMAND = "command:remote:Command"


def _private_key(encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()) -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption).decode()


PRIVATE_KEY = _private_key()


def _settings(stack: str = "prod", **raw: Any) -> StackSettings:
    raw.setdefault("synapse", SYNAPSE)
    raw.setdefault("proxy", {"acme_email": "ops@example.com"})
    raw.setdefault("monitoring", ALERT_RECEIVERS)
    raw["firewall"] = {"host_key": HOST_KEY, **raw.get("firewall", {})}
    return resolve_settings("selfhosted", stack, raw)


def _problems(stack: str = "prod", **raw: Any) -> str:
    with pytest.raises(ConfigError) as error:
        _settings(stack, **raw)
    return str(error.value)


def _labels(settings: StackSettings) -> list[str]:
    return [port.label for port in allowed_ports(settings)]


# --- settings -----------------------------------------------------------------------------------


def test_the_firewall_is_on_by_default_for_a_docker_host_over_ssh() -> None:
    assert _settings(**REMOTE).firewall.enabled


@pytest.mark.parametrize("docker", [{}, {"host": "unix:///var/run/docker.sock"}, {"host": "tcp://vps.example.com:2376"}])
def test_the_firewall_is_off_by_default_for_other_docker_hosts(docker: dict[str, str]) -> None:
    assert not _settings(docker=docker).firewall.enabled


def test_the_ssh_user_host_and_port_come_from_docker_host() -> None:
    target = _settings(docker={"host": "ssh://deploy@vps.example.com:2222"}).ssh_target()
    assert target is not None and (target.user, target.host, target.port) == ("deploy", "vps.example.com", 2222)


def test_without_a_user_in_docker_host_the_firewall_logs_in_as_root_on_port_22() -> None:
    target = _settings(docker={"host": "ssh://vps.example.com"}).ssh_target()
    assert target is not None and (target.user, target.port) == ("root", 22)


def test_firewall_settings_override_docker_host() -> None:
    settings = _settings(**REMOTE, firewall={"host": "203.0.113.7", "user": "admin", "ssh_port": 2200})
    target = settings.ssh_target()
    assert target is not None and (target.user, target.host, target.port) == ("admin", "203.0.113.7", 2200)


def test_an_enabled_firewall_without_an_ssh_host_is_refused_with_the_fix() -> None:
    problems = _problems(firewall={"enabled": True})
    assert "firewall.enabled needs an SSH host" in problems and "set docker.host to ssh://" in problems


def test_firewall_host_alone_enables_it_for_a_local_docker_engine() -> None:
    target = _settings(firewall={"enabled": True, "host": "203.0.113.7"}).ssh_target()
    assert target is not None and target.host == "203.0.113.7"


def test_an_allowed_source_that_is_not_a_network_is_refused_naming_the_key() -> None:
    problems = _problems(**REMOTE, firewall={"allow": [{"port": 9000, "source": "office"}]})
    assert "selfhosted:firewall.allow.0.source must be 'any' or an address or CIDR" in problems


def test_an_unknown_firewall_key_is_refused() -> None:
    assert "selfhosted:firewall.ports is not a known setting" in _problems(**REMOTE, firewall={"ports": [22]})


def test_a_host_key_that_is_not_an_ssh_public_key_is_refused() -> None:
    assert "selfhosted:firewall.host_key" in _problems(**REMOTE, firewall={"host_key": "fingerprint SHA256:abc"})


# --- allowed ports ------------------------------------------------------------------------------


def test_prod_opens_ssh_and_the_proxys_http_and_https_only() -> None:
    assert _labels(_settings(**REMOTE)) == ["22/tcp", "80/tcp", "443/tcp"]


def test_ports_published_on_loopback_stay_closed() -> None:
    settings = _settings(**REMOTE, voicegrow=VOICEGROW)
    assert {8008, 8080, 4399, 8000} & {port.port for port in allowed_ports(settings)} == set()


def test_a_port_the_operator_publishes_on_a_public_address_is_opened() -> None:
    settings = _settings("test", **REMOTE, synapse={**SYNAPSE, "http_bind": "0.0.0.0"})
    assert "8008/tcp" in _labels(settings) and "8080/tcp" in _labels(settings)


def test_the_servers_ports_allowed_public_in_prod_are_opened() -> None:
    voicegrow = {**VOICEGROW, "bind": "0.0.0.0", "allow_public_direct_ports": True}
    assert {"4399/tcp", "8000/tcp", "4400/tcp", "8001/tcp"} <= set(_labels(_settings(**REMOTE, voicegrow=voicegrow)))


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_synapse_published_off_loopback_is_refused_in_staging_and_prod_for_its_admin_api(stack: str) -> None:
    problems = _problems(stack, synapse={**SYNAPSE, "http_bind": "0.0.0.0"})
    assert f"selfhosted:synapse.http_bind 0.0.0.0 publishes Synapse's own port off loopback in {stack}" in problems
    assert "/_synapse/admin" in problems and "keep 127.0.0.1" in problems


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_servers_published_off_loopback_are_refused_in_staging_and_prod_unless_allowed(stack: str) -> None:
    problems = _problems(stack, voicegrow={**VOICEGROW, "bind": "10.0.0.5"})
    assert f"selfhosted:voicegrow.bind 10.0.0.5 publishes the servers' own ports off loopback in {stack}" in problems
    assert "set voicegrow.allow_public_direct_ports to true" in problems


def test_the_federation_port_is_opened_when_served() -> None:
    assert "8448/tcp" in _labels(_settings(**REMOTE, proxy={"acme_email": "ops@example.com", "federation_port": 8448}))


def test_ssh_is_the_first_rule_on_its_own_port() -> None:
    assert _labels(_settings(docker={"host": "ssh://deploy@vps.example.com:2222"}))[0] == "2222/tcp"


def test_operator_rules_are_added_with_their_source() -> None:
    settings = _settings(**REMOTE, firewall={"allow": [{"port": 51820, "protocol": "udp", "source": "203.0.113.0/24"}]})
    assert _labels(settings)[-1] == "51820/udp from 203.0.113.0/24"


def test_a_port_asked_for_twice_is_one_rule() -> None:
    settings = _settings(**REMOTE, firewall={"allow": [{"port": 443}]})
    assert _labels(settings).count("443/tcp") == 1


# --- the rendered script ------------------------------------------------------------------------


def _script(**raw: Any) -> str:
    return render_firewall_script(allowed_ports(_settings(**REMOTE, **raw)))


def test_ssh_is_allowed_before_the_default_deny() -> None:
    script = _script()
    assert script.index("port 22 proto tcp") < script.index("ufw default deny incoming") < script.index("ufw --force enable")


def test_each_ufw_rule_carries_a_comment_naming_it() -> None:
    assert "ufw allow from any to any port 443 proto tcp comment 'selfhosted 443/tcp'" in _script()


def test_the_script_knows_which_of_its_own_rules_it_still_wants() -> None:
    assert "wanted='selfhosted 22/tcp\nselfhosted 80/tcp\nselfhosted 443/tcp'" in _script()


def test_docker_user_lets_in_the_public_ports_by_the_port_the_client_connected_to() -> None:
    block = render_after_rules_block(allowed_ports(_settings(**REMOTE)))
    assert "-A DOCKER-USER -p tcp -m conntrack --ctorigdstport 443 --ctdir ORIGINAL -j RETURN" in block


def test_docker_user_drops_every_other_connection_docker_forwards_from_outside() -> None:
    lines = render_after_rules_block(allowed_ports(_settings(**REMOTE))).splitlines()
    assert lines[-3:] == ["-A DOCKER-USER -m conntrack --ctstate DNAT -j DROP", "COMMIT", "# END selfhosted"]


def test_docker_user_leaves_the_containers_own_traffic_alone() -> None:
    block = render_after_rules_block(allowed_ports(_settings(**REMOTE)))
    assert "-A DOCKER-USER -i docker0 -j RETURN" in block and "-A DOCKER-USER -i br-+ -j RETURN" in block


def test_docker_user_limits_an_operator_rule_to_its_source() -> None:
    block = render_after_rules_block(
        allowed_ports(_settings(**REMOTE, firewall={"allow": [{"port": 9000, "source": "203.0.113.0/24"}]}))
    )
    assert "-A DOCKER-USER -s 203.0.113.0/24 -p tcp -m conntrack --ctorigdstport 9000" in block


# --- the program --------------------------------------------------------------------------------


def _rules(evaluate: Evaluate, overrides: dict[str, Any], secrets: dict[str, str] | None = None) -> Any:
    overrides = {**overrides, "firewall": {"host_key": HOST_KEY, **overrides.get("firewall", {})}}
    return evaluate("prod", overrides=overrides, secrets=secrets).mocks.named("firewall-rules", REMOTE_COMMAND)


def test_a_stack_on_a_remote_host_applies_its_firewall_over_ssh(evaluate: Evaluate) -> None:
    connection = _rules(evaluate, REMOTE).value("connection")
    assert (connection["host"], connection["user"], connection["port"]) == ("vps.example.com", "deploy", 22)


def test_a_local_stack_declares_no_firewall(evaluate: Evaluate) -> None:
    assert evaluate("prod").mocks.of_type(REMOTE_COMMAND) == []


def test_the_firewall_can_be_turned_off_for_a_remote_host(evaluate: Evaluate) -> None:
    assert evaluate("prod", overrides={**REMOTE, "firewall": {"enabled": False}}).mocks.of_type(REMOTE_COMMAND) == []


def test_the_script_goes_on_stdin_and_runs_as_root(evaluate: Evaluate) -> None:
    rules = _rules(evaluate, REMOTE)
    assert rules.value("create") == RUN_AS_ROOT and rules.value("stdin") == _script()


def test_a_change_of_the_script_triggers_it_again(evaluate: Evaluate) -> None:
    rules = _rules(evaluate, REMOTE)
    assert rules.value("triggers") == [hashlib.sha256(rules.value("stdin").encode()).hexdigest()]


def test_the_private_key_is_a_secret_input(evaluate: Evaluate) -> None:
    rules = _rules(evaluate, REMOTE, secrets={"firewall_ssh_private_key": PRIVATE_KEY})
    assert rules.value("connection")["privateKey"] == PRIVATE_KEY and rules.is_secret("connection")


def test_an_encrypted_private_key_is_refused(evaluate: Evaluate) -> None:
    encrypted = _private_key(serialization.BestAvailableEncryption(b"passphrase"))
    with pytest.raises(ConfigError, match="selfhosted:firewall_ssh_private_key must not be encrypted"):
        evaluate("prod", overrides=REMOTE_PROD, secrets={"firewall_ssh_private_key": encrypted})


def test_a_private_key_that_is_not_a_key_is_refused(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match="selfhosted:firewall_ssh_private_key must be a private key"):
        evaluate("prod", overrides=REMOTE_PROD, secrets={"firewall_ssh_private_key": "ssh-ed25519 AAAA public"})


def test_without_a_private_key_the_ssh_agent_logs_in(evaluate: Evaluate) -> None:
    assert "privateKey" not in _rules(evaluate, REMOTE).value("connection")


def test_the_host_key_is_checked_when_set(evaluate: Evaluate) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDf2"
    assert _rules(evaluate, {**REMOTE, "firewall": {"host_key": key}}).value("connection")["hostKey"] == key


def test_the_open_ports_are_exported(evaluate: Evaluate) -> None:
    value, secret = evaluate("prod", overrides=REMOTE_PROD).output("firewall_open_ports")
    assert value == ["22/tcp", "80/tcp", "443/tcp"] and not secret


def test_each_source_is_written_into_the_rules_of_its_ip_version() -> None:
    allow = [{"port": 9000, "source": "2001:db8::/32"}, {"port": 9001, "protocol": "udp", "source": "203.0.113.0/24"}]
    ports = allowed_ports(_settings(**REMOTE, firewall={"allow": allow}))
    ipv4, ipv6 = render_after_rules_block(ports, 4), render_after_rules_block(ports, 6)
    assert "-s 203.0.113.0/24 -p udp -m conntrack --ctorigdstport 9001" in ipv4 and "2001:db8" not in ipv4
    assert "-s 2001:db8::/32 -p tcp -m conntrack --ctorigdstport 9000" in ipv6 and "203.0.113" not in ipv6
    # A port open to anyone is open over both.
    assert all("--ctorigdstport 443 " in block for block in (ipv4, ipv6))
    script = render_firewall_script(ports)
    assert "/etc/ufw/after.rules" in script and "/etc/ufw/after6.rules" in script



def test_prod_refuses_a_firewall_without_the_hosts_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:firewall\.host_key is required in prod: .*ssh-keyscan"):
        evaluate("prod", overrides=REMOTE)
    staging = {"synapse": SYNAPSE, "proxy": {"acme_email": "ops@example.com"}, "monitoring": ALERT_RECEIVERS, **REMOTE}
    assert resolve_settings("selfhosted", "staging", staging).firewall.host_key is None
