"""Creates Synapse's admin account and first registration token; runs inside the Synapse container.

Fed to `python3 -` by the deploy. Idempotent: an existing account or token counts as success.
Reads the registration shared secret from the file homeserver.yaml names, and the admin's
name, password and the token from the environment, so no secret appears on a command line.
"""

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request

import yaml

BASE_URL = "http://127.0.0.1:8008"


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


def admin_access_token(secret, user, password):
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
        print("created admin account %s" % user)
        return body["access_token"]
    if body.get("errcode") != "M_USER_IN_USE":
        sys.exit("could not create admin account %s: %s %s" % (user, status, body))
    status, body = call(
        "POST",
        "/_matrix/client/v3/login",
        {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password},
    )
    if status != 200:
        sys.exit("admin account %s exists but its password does not log in: %s" % (user, body.get("error")))
    print("admin account %s already exists" % user)
    return body["access_token"]


def ensure_registration_token(access_token, registration_token):
    status, body = call(
        "POST", "/_synapse/admin/v1/registration_tokens/new", {"token": registration_token}, access_token
    )
    if status == 200:
        print("created registration token")
    elif status == 400 and "Token already exists" in body.get("error", ""):
        print("registration token already exists")
    else:
        sys.exit("could not create registration token: %s %s" % (status, body))


def main():
    with open(os.environ.get("SYNAPSE_CONFIG_PATH", "/data/homeserver.yaml")) as config_file:
        secret_path = yaml.safe_load(config_file)["registration_shared_secret_path"]
    with open(secret_path) as secret_file:
        secret = secret_file.read().strip()
    wait_until_healthy()
    access_token = admin_access_token(secret, os.environ["ADMIN_USERNAME"], os.environ["ADMIN_PASSWORD"])
    registration_token = os.environ.get("REGISTRATION_TOKEN")
    if registration_token:
        ensure_registration_token(access_token, registration_token)


if __name__ == "__main__":
    main()
