"""Stand-in for the MinIO client `mc`: the few commands a deployment runs inside the server's
container, with the real mc's argument forms, messages and exit codes.

    mc [GLOBAL FLAGS] mb [--ignore-existing|-p] [--region R] ALIAS/BUCKET[/PREFIX]...
    mc [GLOBAL FLAGS] ls [--recursive|-r] ALIAS[/BUCKET[/PREFIX]]
    mc [GLOBAL FLAGS] ready ALIAS
    mc [GLOBAL FLAGS] rb [--force] ALIAS/BUCKET...
    mc [GLOBAL FLAGS] cat ALIAS/BUCKET/OBJECT...
    mc [GLOBAL FLAGS] cp SOURCE TARGET            (one file: local path <-> ALIAS/BUCKET/OBJECT)
    mc [GLOBAL FLAGS] alias set ALIAS URL ACCESSKEY SECRETKEY
    mc [GLOBAL FLAGS] alias ls [ALIAS]
    mc [GLOBAL FLAGS] admin user add ALIAS ACCESSKEY [SECRETKEY]   (without SECRETKEY: a line of stdin)
    mc [GLOBAL FLAGS] admin policy create ALIAS POLICYNAME POLICYFILE
    mc [GLOBAL FLAGS] admin policy attach ALIAS POLICYNAME --user USER

An alias comes from the configuration that `mc alias set` writes ($MC_CONFIG_DIR/config.json,
default ~/.mc) or, failing that, from MC_HOST_<ALIAS>=http[s]://ACCESSKEY:SECRETKEY@HOST:PORT,
split as the real mc splits it (access key up to the first ':', secret key up to the last '@').
Errors go to stderr as "mc: <ERROR> ..." with exit status 1.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone

VERSION = "RELEASE.2025-04-16T18-13-26Z"
HOST_KEYS = re.compile(r"^(https?://)(.*?):(.*)@(.*?)$")
HOST_KEY_TOKENS = re.compile(r"^(https?://)(.*?):(.*?):(.*)@(.*?)$")
READY_INTERVAL = 5.0


class McError(Exception):
    pass


def error(message: str) -> None:
    sys.stderr.write(f"mc: <ERROR> {message}\n")


def fatal(message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    error(message)
    sys.exit(1)


# ------------------------------------------------------------------------------------------------
# Aliases


@dataclass
class Alias:
    name: str
    url: str
    access_key: str
    secret_key: str
    session_token: str = ""


def config_dir() -> str:
    return os.environ.get("MC_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".mc")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def read_config() -> dict:
    try:
        with open(config_path(), encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        config = {}
    config.setdefault("version", "10")
    config.setdefault("aliases", {})
    return config


def parse_env_url(value: str) -> tuple[str, str, str, str]:
    """URL, access key, secret key and session token, as mc's parseEnvURLStr splits them."""
    access = secret = token = ""
    url = value
    match = HOST_KEY_TOKENS.match(value)
    if match:
        access, secret, token = match.group(2), match.group(3), match.group(4)
        url = match.group(1) + match.group(5)
    else:
        match = HOST_KEYS.match(value)
        if match:
            access, secret = match.group(2), match.group(3)
            url = match.group(1) + match.group(4)
    if not re.match(r"^https?://[^/?#]+/?$", url):
        raise McError(f"Invalid URL `{url}`.")
    return url.rstrip("/"), access, secret, token


def find_alias(name: str) -> Alias:
    entry = read_config()["aliases"].get(name)
    if entry:
        return Alias(name, entry["url"].rstrip("/"), entry.get("accessKey", ""), entry.get("secretKey", ""),
                     entry.get("sessionToken", ""))
    env = os.environ.get("MC_HOST_" + name)
    if env is None:
        raise McError(f"Unable to find alias `{name}`.")  # not reached for local paths
    url, access, secret, token = parse_env_url(env)
    return Alias(name, url, access, secret, token)


def has_alias(name: str) -> bool:
    return name in read_config()["aliases"] or ("MC_HOST_" + name) in os.environ


def split_target(target: str) -> tuple[Alias, str, str]:
    """ALIAS[/BUCKET[/KEY]] -> alias, bucket, key."""
    name, _, rest = target.partition("/")
    if not has_alias(name):
        raise McError(f"Unable to find alias `{name}`. Use `mc alias set` or MC_HOST_{name}.")
    bucket, _, key = rest.partition("/")
    return find_alias(name), bucket, key


# ------------------------------------------------------------------------------------------------
# S3 access (boto3)


def client(alias: Alias):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=alias.url,
        aws_access_key_id=alias.access_key or None,
        aws_secret_access_key=alias.secret_key or None,
        aws_session_token=alias.session_token or None,
        region_name=os.environ.get("MC_REGION", "us-east-1"),
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 5, "mode": "standard"},
        ),
    )


def describe(exc: Exception) -> str:
    from botocore.exceptions import ClientError, EndpointConnectionError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        message = err.get("Message") or err.get("Code") or str(exc)
        code = err.get("Code", "")
        if code in ("404", "NoSuchBucket") and not err.get("Message"):
            return "The specified bucket does not exist"
        if code == "403" and not err.get("Message"):
            return "Access Denied."
        return message
    if isinstance(exc, EndpointConnectionError):
        return f"Get \"{exc.kwargs.get('endpoint_url', '')}\": dial tcp: connection refused"
    return str(exc)


def error_code(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


# ------------------------------------------------------------------------------------------------
# Output formats


def human_size(size: int) -> str:
    """go-humanize's IBytes without the space, as mc ls prints sizes."""
    if size < 10:
        return f"{size}B"
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    exponent = 0
    value = float(size)
    while value >= 1024 and exponent < len(units) - 1:
        value /= 1024
        exponent += 1
    if exponent == 0:
        return f"{size}B"
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return text + units[exponent]


def ls_line(when: datetime, size: int, name: str, storage_class: str = "") -> str:
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    line = f"[{stamp}] {human_size(size):>6}"
    if storage_class:
        line += " " + storage_class
    return line + " " + name


# ------------------------------------------------------------------------------------------------
# Commands


def take_flags(args: list[str], flags: dict[str, str]) -> tuple[dict[str, str | bool], list[str]]:
    """flags: name -> 'bool' or 'value' (names include their dashes, aliases separated by |)."""
    names = {}
    for spec, kind in flags.items():
        for name in spec.split("|"):
            names[name] = (spec.split("|")[0], kind)
    values: dict[str, str | bool] = {}
    rest = []
    i = 0
    while i < len(args):
        arg = args[i]
        key, eq, inline = arg.partition("=")
        if arg == "--":
            rest.extend(args[i + 1:])
            break
        if key in names:
            canonical, kind = names[key]
            if kind == "bool":
                values[canonical] = True
            elif eq:
                values[canonical] = inline
            else:
                i += 1
                if i >= len(args):
                    fatal(f"flag needs an argument: {key}")
                values[canonical] = args[i]
        elif arg.startswith("-") and arg != "-":
            fatal(f"flag provided but not defined: {arg}")
        else:
            rest.append(arg)
        i += 1
    return values, rest


def cmd_mb(args: list[str]) -> int:
    flags, targets = take_flags(args, {"--ignore-existing|-p": "bool", "--region": "value",
                                       "--with-lock|-l": "bool", "--with-versioning": "bool"})
    if not targets:
        fatal("mb: a target is required, e.g. `mc mb ALIAS/BUCKET`.")
    status = 0
    for target in targets:
        try:
            alias, bucket, key = split_target(target)
        except McError as exc:
            error(f"Invalid target `{target}`. {exc}")
            status = 1
            continue
        if not bucket:
            error(f"Unable to make bucket, please use `mc mb {target.rstrip('/')}/your-bucket-name`.")
            status = 1
            continue
        s3 = client(alias)
        try:
            if key:
                folder = key if key.endswith("/") else key + "/"
                try:
                    s3.put_object(Bucket=bucket, Key=folder, Body=b"")
                except Exception as exc:  # noqa: BLE001
                    if error_code(exc) != "NoSuchBucket":
                        raise
                    s3.create_bucket(Bucket=bucket)
                    s3.put_object(Bucket=bucket, Key=folder, Body=b"")
            else:
                try:
                    s3.create_bucket(Bucket=bucket)
                except Exception as exc:  # noqa: BLE001
                    if not (flags.get("--ignore-existing")
                            and error_code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")):
                        raise
        except Exception as exc:  # noqa: BLE001
            error(f"Unable to make bucket `{target}`. {describe(exc)}")
            status = 1
            continue
        print(f"Bucket created successfully `{target}`.")
    return status


def cmd_rb(args: list[str]) -> int:
    flags, targets = take_flags(args, {"--force": "bool", "--dangerous": "bool"})
    if not targets:
        fatal("rb: a target is required, e.g. `mc rb ALIAS/BUCKET`.")
    status = 0
    for target in targets:
        try:
            alias, bucket, key = split_target(target)
            if not bucket or key:
                raise McError("`mc rb` removes whole buckets: use ALIAS/BUCKET.")
            s3 = client(alias)
            if flags.get("--force"):
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                    if keys:
                        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            s3.delete_bucket(Bucket=bucket)
        except McError as exc:
            error(f"Unable to remove `{target}`. {exc}")
            status = 1
            continue
        except Exception as exc:  # noqa: BLE001
            error(f"Unable to remove bucket `{target}`. {describe(exc)}")
            status = 1
            continue
        print(f"Removed `{target}` successfully.")
    return status


def cmd_ls(args: list[str]) -> int:
    flags, targets = take_flags(args, {"--recursive|-r": "bool", "--versions": "bool",
                                       "--incomplete|-I": "bool", "--summarize": "bool"})
    if len(targets) != 1:
        fatal("ls: this stand-in lists one target: `mc ls ALIAS[/BUCKET[/PREFIX]]`.")
    target = targets[0]
    try:
        alias, bucket, key = split_target(target)
    except McError as exc:
        fatal(f"Unable to list folder. {exc}")
    s3 = client(alias)
    recursive = bool(flags.get("--recursive"))
    try:
        if not bucket:
            for b in s3.list_buckets().get("Buckets", []):
                if recursive:
                    for obj in iterate(s3, b["Name"], "", True):
                        print(ls_line(obj[0], obj[1], b["Name"] + "/" + obj[2], obj[3]))
                else:
                    print(ls_line(b["CreationDate"], 0, b["Name"] + "/"))
            return 0
        try:
            s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) == "NoSuchBucket":
                fatal(f"Unable to list folder. Bucket `{bucket}` does not exist.")
            raise
        prefix = key
        if key and not key.endswith("/"):
            # An object of that name is listed by itself; otherwise the folder of that name.
            try:
                head = s3.head_object(Bucket=bucket, Key=key)
                print(ls_line(head["LastModified"], head["ContentLength"], key.rsplit("/", 1)[-1], "STANDARD"))
                return 0
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) not in ("404", "NoSuchKey"):
                    raise
            prefix = key + "/"
        found = False
        for when, size, name, storage in iterate(s3, bucket, prefix, recursive):
            found = True
            print(ls_line(when, size, name[len(prefix):], storage))
        if not found and key:
            fatal(f"Unable to list folder. Requested path `{target}` does not exist.")
        return 0
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001
        fatal(f"Unable to list folder. {describe(exc)}")
    return 1


def iterate(s3, bucket: str, prefix: str, recursive: bool):
    """(time, size, key or prefix, storage class) in the order mc prints them."""
    kwargs = {"Bucket": bucket, "Prefix": prefix}
    if not recursive:
        kwargs["Delimiter"] = "/"
    now = datetime.now(timezone.utc)
    entries = []
    for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
        for common in page.get("CommonPrefixes", []):
            entries.append((now, 0, common["Prefix"], ""))
        for obj in page.get("Contents", []):
            if obj["Key"] == prefix and prefix.endswith("/"):
                continue  # the folder object itself
            entries.append((obj["LastModified"], obj["Size"], obj["Key"], obj.get("StorageClass", "STANDARD")))
    entries.sort(key=lambda e: e[2])
    return entries


def cmd_ready(args: list[str]) -> int:
    flags, targets = take_flags(args, {"--cluster-read": "bool", "--maintenance": "bool"})
    if len(targets) != 1:
        fatal("ready: an alias is required, e.g. `mc ready ALIAS`.")
    name = targets[0].rstrip("/")
    try:
        alias = find_alias(name) if has_alias(name) else None
    except McError as exc:
        fatal(f"Couldn't construct anonymous client for `{name}`. {exc}")
    if alias is None:
        fatal(f"Couldn't construct anonymous client for `{name}`. Unable to find alias `{name}`.")
    path = "/minio/health/cluster/read" if flags.get("--cluster-read") else "/minio/health/cluster"
    if flags.get("--maintenance"):
        path += "?maintenance=true"
    # Like the real command: ask at once, then every 5 seconds until the cluster is ready.
    while True:
        try:
            with urllib.request.urlopen(alias.url + path, timeout=10) as response:
                healthy = response.status == 200
            problem = None
        except urllib.error.HTTPError as exc:
            healthy, problem = False, None
            exc.close()
        except (urllib.error.URLError, OSError) as exc:
            healthy = False
            reason = getattr(exc, "reason", exc)
            problem = f"Get \"{alias.url}{path}\": {reason}"
        if healthy:
            print(f"The cluster '{name}' is ready", flush=True)
            return 0
        if problem:
            print(f"The cluster '{name}' is unreachable: {problem}", flush=True)
        else:
            print(f"The cluster '{name}' is not ready", flush=True)
        time.sleep(READY_INTERVAL)


def cmd_cat(args: list[str]) -> int:
    _, targets = take_flags(args, {})
    status = 0
    for target in targets:
        try:
            alias, bucket, key = split_target(target)
            body = client(alias).get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(1 << 20), b""):
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        except McError as exc:
            error(f"Unable to read from `{target}`. {exc}")
            status = 1
        except Exception as exc:  # noqa: BLE001
            error(f"Unable to read from `{target}`. {describe(exc)}")
            status = 1
    return status


def cmd_cp(args: list[str]) -> int:
    _, paths = take_flags(args, {"--quiet|-q": "bool"})
    if len(paths) != 2:
        fatal("cp: this stand-in copies one file: `mc cp SOURCE TARGET`.")
    source, target = paths
    remote_source = "/" in source and has_alias(source.split("/", 1)[0]) and not os.path.exists(source)
    remote_target = "/" in target and has_alias(target.split("/", 1)[0])
    try:
        if remote_source and not remote_target:
            alias, bucket, key = split_target(source)
            destination = os.path.join(target, key.rsplit("/", 1)[-1]) if os.path.isdir(target) else target
            client(alias).download_file(bucket, key, destination)
        elif remote_target and not remote_source:
            alias, bucket, key = split_target(target)
            if not key or key.endswith("/"):
                key += os.path.basename(source)
            client(alias).upload_file(source, bucket, key)
        elif remote_source and remote_target:
            src_alias, src_bucket, src_key = split_target(source)
            alias, bucket, key = split_target(target)
            if not key or key.endswith("/"):
                key += src_key.rsplit("/", 1)[-1]
            client(alias).copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": src_bucket, "Key": src_key})
        else:
            raise McError("one side must be ALIAS/BUCKET/OBJECT.")
    except McError as exc:
        fatal(f"Unable to copy `{source}` to `{target}`. {exc}")
    except Exception as exc:  # noqa: BLE001
        fatal(f"Failed to copy `{source}`. {describe(exc)}")
    print(f"`{source}` -> `{target}`")
    return 0


def cmd_alias(args: list[str]) -> int:
    if not args:
        fatal("alias: use `mc alias set ALIAS URL ACCESSKEY SECRETKEY` or `mc alias ls`.")
    sub, rest = args[0], args[1:]
    _, rest = take_flags(rest, {"--api": "value", "--path": "value"})
    config = read_config()
    if sub in ("set", "s"):
        if len(rest) != 4:
            fatal("alias set: expected ALIAS URL ACCESSKEY SECRETKEY.")
        name, url, access, secret = rest
        if not re.match(r"^https?://[^/?#]+/?$", url):
            fatal(f"Invalid URL `{url}`.")
        config["aliases"][name] = {"url": url.rstrip("/"), "accessKey": access, "secretKey": secret,
                                   "api": "s3v4", "path": "auto"}
        os.makedirs(config_dir(), exist_ok=True)
        tmp = config_path() + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=1)
        os.chmod(tmp, 0o600)
        os.replace(tmp, config_path())
        print(f"Added `{name}` successfully.")
        return 0
    if sub in ("ls", "list"):
        names = rest or sorted(set(config["aliases"]) | {k[8:] for k in os.environ if k.startswith("MC_HOST_")})
        for name in names:
            try:
                alias = find_alias(name)
            except McError as exc:
                fatal(str(exc))
            print(f"{name}\n  URL       : {alias.url}\n  AccessKey : {alias.access_key}\n"
                  f"  SecretKey : {'*' * len(alias.secret_key)}\n  API       : s3v4\n  Path      : auto\n")
        return 0
    if sub in ("rm", "remove"):
        for name in rest:
            config["aliases"].pop(name, None)
        os.makedirs(config_dir(), exist_ok=True)
        with open(config_path(), "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=1)
        return 0
    fatal(f"alias: unknown subcommand `{sub}`.")
    return 1


def admin_call(alias: Alias, method: str, operation: str, params: dict[str, str], body: bytes) -> None:
    """One call of the stand-in server's admin API, signed with the alias's keys; McError with the
    server's message when it refuses."""
    from urllib.parse import urlencode

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{alias.url}/minio/admin/v3/{operation}" + (f"?{urlencode(params)}" if params else "")
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    # As madmin signs: SigV4 for "s3", with the body's hash in x-amz-content-sha256.
    S3SigV4Auth(Credentials(alias.access_key, alias.secret_key), "s3", os.environ.get("MC_REGION", "us-east-1")).add_auth(request)
    prepared = urllib.request.Request(url, data=body, method=method, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=30):
            return
    except urllib.error.HTTPError as exc:
        answer = exc.read()
        try:
            message = json.loads(answer).get("Message")
        except ValueError:
            message = re.search(rb"<Message>(.*?)</Message>", answer)
            message = message.group(1).decode() if message else None
        raise McError(message or f"{exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise McError(f"Post \"{url}\": {exc.reason}") from None


def cmd_admin(args: list[str]) -> int:
    flags, rest = take_flags(args[2:], {"--user": "value"})
    kind, action = (args + ["", ""])[:2]
    if len(rest) < 1 or not has_alias(rest[0]):
        fatal(f"admin {kind} {action}: expected an alias first.")
    alias = find_alias(rest[0])
    try:
        if (kind, action) == ("user", "add") and len(rest) in (2, 3):
            secret = rest[2] if len(rest) == 3 else sys.stdin.readline().rstrip("\n")
            admin_call(alias, "PUT", "add-user", {"accessKey": rest[1]}, json.dumps({"secretKey": secret, "status": "enabled"}).encode())
            print(f"Added user `{rest[1]}` successfully.")
        elif (kind, action) == ("policy", "create") and len(rest) == 3:
            with open(rest[2], "rb") as policy:
                admin_call(alias, "PUT", "add-canned-policy", {"name": rest[1]}, policy.read())
            print(f"Created policy `{rest[1]}` successfully.")
        elif (kind, action) == ("policy", "attach") and len(rest) == 2 and flags.get("--user"):
            admin_call(alias, "POST", "idp/builtin/policy/attach", {}, json.dumps({"policies": [rest[1]], "user": flags["--user"]}).encode())
            print(f"Attached Policies: [{rest[1]}]\nTo User: {flags['--user']}")
        else:
            fatal(f"admin {kind} {action}: this stand-in knows `user add`, `policy create` and `policy attach --user`.")
    except McError as exc:
        fatal(f"Unable to {'add new user' if kind == 'user' else 'change policy'}. {exc}")
    except OSError as exc:
        fatal(f"Unable to read the policy file. {exc}")
    return 0


COMMANDS = {"mb": cmd_mb, "rb": cmd_rb, "ls": cmd_ls, "ready": cmd_ready, "cat": cmd_cat,
            "cp": cmd_cp, "alias": cmd_alias, "admin": cmd_admin}
GLOBAL_BOOL = {"--quiet", "-q", "--no-color", "--insecure", "--debug", "--disable-pager", "--dp",
               "--json"}
GLOBAL_VALUE = {"--config-dir", "-C", "--limit-upload", "--limit-download", "--resolve"}


def main(argv: list[str]) -> int:
    args = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, inline = arg.partition("=")
        if key in GLOBAL_VALUE:
            value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            if not eq:
                i += 1
            if key in ("--config-dir", "-C"):
                os.environ["MC_CONFIG_DIR"] = value
        elif arg in GLOBAL_BOOL:
            pass
        else:
            args.append(arg)
        i += 1
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__.strip())
        return 0
    if args[0] in ("--version", "-v", "version"):
        print(f"mc version {VERSION} (stand-in)")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        fatal(f"`{args[0]}` is not a recognized command (this stand-in knows: {', '.join(sorted(COMMANDS))}).")
    try:
        return command(args[1:])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
