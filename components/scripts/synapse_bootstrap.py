"""Makes Synapse's admin account and registration token what the stack says; runs inside the
Synapse container.

Fed to `python3 -` by the deploy, again whenever the admin's password or the token changes.
Idempotent: an existing account with this password, or an existing token, counts as success.
A changed password is set through the admin API by a short-lived admin of its own (made with the
registration shared secret, deactivated at once): the old password is not known here. A changed
token replaces the one this script made before (recorded on the data volume); tokens made by
hand are left alone. Reads the shared secret from the file homeserver.yaml names, and the
admin's name, password, the token and its lifetime from the environment, so no secret appears on
a command line.
"""

import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

BASE_URL = "http://127.0.0.1:8008"
MADE_TOKENS = "/data/registration-tokens-made-by-the-deploy"
"""The tokens this script made, one a line: a changed token replaces them, not tokens made by hand."""


def call(method, path, body=None, token=None):
    request = urllib.request.Request(BASE_URL + path, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(request, data, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_until_healthy(timeout_seconds=120):
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(BASE_URL + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    sys.exit("Synapse did not become healthy within %d s" % timeout_seconds)


def registration_mac(secret, nonce, user, password):
    message = b"\x00".join(part.encode() for part in (nonce, user, password, "admin"))
    return hmac.new(secret.encode(), message, hashlib.sha1).hexdigest()


def register_admin(secret, user, password):
    """Register `user` as an admin with the shared secret: its access token, or None when the name is taken."""
    status, body = call("GET", "/_synapse/admin/v1/register")
    if status != 200:
        sys.exit("shared-secret registration unavailable: %s %s" % (status, body))
    nonce = body["nonce"]
    status, body = call(
        "POST",
        "/_synapse/admin/v1/register",
        {
            "nonce": nonce,
            "username": user,
            "password": password,
            "admin": True,
            "mac": registration_mac(secret, nonce, user, password),
        },
    )
    if status == 200:
        return body["access_token"]
    if body.get("errcode") != "M_USER_IN_USE":
        sys.exit("could not create admin account %s: %s %s" % (user, status, body))
    return None


def log_in(user, password):
    status, body = call(
        "POST",
        "/_matrix/client/v3/login",
        {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password},
    )
    return body["access_token"] if status == 200 else None


def set_password(secret, user_id, password):
    """Give `user_id` this password through a short-lived admin, then deactivate that admin."""
    helper = "deploy-" + secrets.token_hex(6)
    token = register_admin(secret, helper, secrets.token_urlsafe(24))
    if token is None:
        sys.exit("could not make a short-lived admin to set the admin's password")
    try:
        status, body = call(
            "PUT", "/_synapse/admin/v2/users/" + urllib.parse.quote(user_id), {"password": password, "logout_devices": True}, token
        )
        if status != 200:
            sys.exit("could not set the password of %s: %s %s" % (user_id, status, body))
    finally:
        helper_id = "@%s:%s" % (helper, user_id.split(":", 1)[1])
        call("POST", "/_synapse/admin/v1/deactivate/" + urllib.parse.quote(helper_id), {"erase": True}, token)


def admin_access_token(secret, user, user_id, password):
    """The admin's access token: the account made on first deploy, or given this password when it changed."""
    token = register_admin(secret, user, password)
    if token is not None:
        print("created admin account %s" % user)
        return token
    token = log_in(user, password)
    if token is not None:
        print("admin account %s already exists" % user)
        return token
    set_password(secret, user_id, password)
    token = log_in(user, password)
    if token is None:
        sys.exit("admin account %s was given its new password but does not log in with it" % user)
    print("admin account %s: password changed (its other sessions were logged out)" % user)
    return token


def made_tokens():
    try:
        with open(MADE_TOKENS) as made:
            return [line.strip() for line in made if line.strip()]
    except FileNotFoundError:
        return []


def ensure_registration_token(access_token, registration_token, valid_days):
    """The stack's token exists, valid for `valid_days` from now when set (else without end); the
    ones this script made before are deleted."""
    expiry = int((time.time() + valid_days * 86400) * 1000) if valid_days else None
    lifetime = " valid for %d days" % valid_days if valid_days else " without end"
    status, answer = call(
        "POST", "/_synapse/admin/v1/registration_tokens/new", {"token": registration_token, "expiry_time": expiry}, access_token
    )
    if status == 200:
        print("created registration token" + lifetime)
    elif status == 400 and "Token already exists" in answer.get("error", ""):
        path = "/_synapse/admin/v1/registration_tokens/" + urllib.parse.quote(registration_token)
        status, answer = call("PUT", path, {"expiry_time": expiry}, access_token)
        if status != 200:
            sys.exit("could not set the registration token's lifetime: %s %s" % (status, answer))
        print("registration token exists, now" + lifetime)
    else:
        sys.exit("could not create registration token: %s %s" % (status, answer))
    for previous in made_tokens():
        if previous != registration_token:
            status, answer = call("DELETE", "/_synapse/admin/v1/registration_tokens/" + urllib.parse.quote(previous), token=access_token)
            if status not in (200, 404):
                sys.exit("could not delete the previous registration token: %s %s" % (status, answer))
            print("deleted the previous registration token")
    with open(MADE_TOKENS + ".new", "w") as made:
        made.write(registration_token + "\n")
    os.chmod(MADE_TOKENS + ".new", 0o600)
    os.replace(MADE_TOKENS + ".new", MADE_TOKENS)


def main():
    with open(os.environ.get("SYNAPSE_CONFIG_PATH", "/data/homeserver.yaml")) as config_file:
        config = yaml.safe_load(config_file)
    with open(config["registration_shared_secret_path"]) as secret_file:
        secret = secret_file.read().strip()
    wait_until_healthy()
    user = os.environ["ADMIN_USERNAME"]
    user_id = "@%s:%s" % (user, config["server_name"])
    access_token = admin_access_token(secret, user, user_id, os.environ["ADMIN_PASSWORD"])
    registration_token = os.environ.get("REGISTRATION_TOKEN")
    if registration_token:
        ensure_registration_token(access_token, registration_token, int(os.environ.get("REGISTRATION_TOKEN_DAYS") or 0))


if __name__ == "__main__":
    main()
