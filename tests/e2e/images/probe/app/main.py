"""VoiceGrow probe: a test fixture standing in for the VoiceGrow server image.

It reads the environment the deployment gives the real server, serves the same health endpoint on
HTTP_PORT and a WebSocket echo on WS_PORT, and reports on /api/v1/health/detail whether MySQL,
Redis and the object store accept the credentials it was given. It implements nothing of the
voice assistant itself. See CONTRACT.md beside the Dockerfile.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INSTANCE = socket.gethostname()
CHECK_TIMEOUT = float(os.environ.get("PROBE_CHECK_TIMEOUT", "3"))

# The variables the deployment passes to the VoiceGrow server (deployment guide, section 4.1).
KNOWN_VARIABLES = (
    "SERVER_HOST", "WS_PORT", "HTTP_PORT", "DEBUG", "LOG_LEVEL", "WORKERS",
    "ASR_MODEL_SIZE", "ASR_DEVICE", "ASR_COMPUTE_TYPE", "ASR_LANGUAGE", "ASR_TIMEOUT",
    "TTS_BASE_URL", "TTS_API_KEY", "TTS_SECRET_KEY", "TTS_VOICE_ZH", "TTS_VOICE_EN",
    "TTS_SPEAKING_RATE", "TTS_PITCH", "TTS_TIMEOUT",
    "LLM_BASE_URL", "LLM_API_KEY", "LLM_SECRET_KEY", "LLM_MODEL", "LLM_MAX_TOKENS",
    "LLM_TEMPERATURE", "LLM_TIMEOUT",
    "MYSQL_HOST", "MYSQL_PORT", "MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD",
    "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD",
    "MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_BUCKET", "MINIO_SECURE",
)
# Any other variable with one of these prefixes is reported too (by name, value if not secret).
KNOWN_PREFIXES = ("SERVER_", "WS_", "HTTP_", "ASR_", "TTS_", "LLM_", "MYSQL_", "REDIS_", "MINIO_")
SECRET_MARKERS = ("PASSWORD", "SECRET", "KEY", "TOKEN")
TRUE = ("1", "true", "yes", "on")


def log(message: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    sys.stdout.write(f"{stamp} {INSTANCE} {message}\n")
    sys.stdout.flush()


def env(name: str, default: str = "") -> str:
    """NAME's value, or the content of the file named by NAME_FILE (the official images' convention)."""
    if name not in os.environ and f"{name}_FILE" in os.environ:
        with open(os.environ[f"{name}_FILE"], encoding="utf-8") as secret:
            return secret.read().rstrip("\n")
    return os.environ.get(name, default)


def port_from_env(name: str, default: int) -> int:
    value = env(name, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        sys.stderr.write(f"probe: {name} must be a TCP port number, got {value!r}\n")
        sys.exit(2)
    return int(value)


def is_secret(name: str) -> bool:
    return any(marker in name for marker in SECRET_MARKERS)


def received_environment() -> dict[str, str]:
    """Names of the variables received; values only of those that are not secret."""
    names = [n for n in os.environ if n in KNOWN_VARIABLES or n.startswith(KNOWN_PREFIXES) or n == "DEBUG"]
    result = {}
    for name in sorted(set(names)):
        value = os.environ[name]
        if is_secret(name):
            result[name] = "(secret)" if value else ""
        else:
            result[name] = value
    return result


def short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


# ------------------------------------------------------------------------------------------------
# Dependency checks: each returns {"ok": bool, "error": str | None, ...}


def check_mysql() -> dict:
    import pymysql

    try:
        connection = pymysql.connect(
            host=env("MYSQL_HOST", "mysql"),
            port=int(env("MYSQL_PORT", "3306") or 3306),
            user=env("MYSQL_USER"),
            password=env("MYSQL_PASSWORD"),
            database=env("MYSQL_DATABASE") or None,
            connect_timeout=CHECK_TIMEOUT,
            read_timeout=CHECK_TIMEOUT,
            write_timeout=CHECK_TIMEOUT,
        )
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"ok": False, "error": short(exc)}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            row = cursor.fetchone()
            cursor.execute("SELECT DATABASE(), VERSION()")
            database, version = cursor.fetchone()
        if row != (1,):
            return {"ok": False, "error": f"SELECT 1 returned {row!r}"}
        return {"ok": True, "error": None, "database": database, "version": version}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": short(exc)}
    finally:
        connection.close()


def check_redis() -> dict:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    host, port = env("REDIS_HOST", "redis"), int(env("REDIS_PORT", "6379") or 6379)
    password = env("REDIS_PASSWORD") or None
    # No retries: redis-py retries refused authentication (a ConnectionError) with back-off.
    options = {"socket_timeout": CHECK_TIMEOUT, "socket_connect_timeout": CHECK_TIMEOUT,
               "retry": Retry(NoBackoff(), 0)}
    # Does the server answer a client that gives no password?
    anonymous = redis.Redis(host=host, port=port, **options)
    unauthenticated: bool | None
    anonymous_error = None
    try:
        unauthenticated = bool(anonymous.ping())
    except redis.exceptions.AuthenticationError:
        unauthenticated = False
    except redis.exceptions.ResponseError as exc:
        unauthenticated = not ("NOAUTH" in str(exc) or "Authentication required" in str(exc))
    except Exception as exc:  # noqa: BLE001 - e.g. unreachable: reported below
        unauthenticated = None
        anonymous_error = short(exc)
    finally:
        anonymous.close()
    result: dict = {"unauthenticated_ping_accepted": unauthenticated, "password_set": password is not None}
    client = redis.Redis(host=host, port=port, password=password, **options)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        result.update(ok=False, error=short(exc))
        return result
    finally:
        client.close()
    if password is not None and unauthenticated:
        result.update(ok=False, error="the server accepted a PING without the password")
    elif unauthenticated is None:
        result.update(ok=False, error=anonymous_error)
    else:
        result.update(ok=True, error=None)
    return result


def check_minio() -> dict:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    endpoint = env("MINIO_ENDPOINT", "minio:9000")
    secure = env("MINIO_SECURE", "false").strip().lower() in TRUE
    url = endpoint if "://" in endpoint else ("https://" if secure else "http://") + endpoint
    bucket = env("MINIO_BUCKET")
    result: dict = {"endpoint": url, "bucket": bucket}
    if not bucket:
        result.update(ok=False, error="MINIO_BUCKET is empty")
        return result
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=env("MINIO_ACCESS_KEY"),
        aws_secret_access_key=env("MINIO_SECRET_KEY"),
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                      connect_timeout=CHECK_TIMEOUT, read_timeout=CHECK_TIMEOUT,
                      retries={"max_attempts": 1}),
    )
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        # HEAD answers carry no error code: ask again with a request whose answer does.
        reason = exc.response.get("Error", {}).get("Code", "")
        try:
            s3.list_objects_v2(Bucket=bucket, MaxKeys=1)
        except ClientError as detail:
            error = detail.response.get("Error", {})
            reason = f"{error.get('Code', reason)}: {error.get('Message', '')}".strip(": ")
        except Exception as detail:  # noqa: BLE001
            reason = short(detail)
        result.update(ok=False, error=f"HeadBucket {bucket}: {reason}")
        return result
    except Exception as exc:  # noqa: BLE001
        result.update(ok=False, error=short(exc))
        return result
    result.update(ok=True, error=None)
    return result


CHECKS = {"mysql": check_mysql, "redis": check_redis, "minio": check_minio}


def detail() -> tuple[int, dict]:
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        futures = {name: pool.submit(check) for name, check in CHECKS.items()}
        results = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=CHECK_TIMEOUT * 4)
            except Exception as exc:  # noqa: BLE001
                results[name] = {"ok": False, "error": short(exc)}
    healthy = all(r["ok"] for r in results.values())
    body = {"status": "ok" if healthy else "degraded", **results, "instance": INSTANCE,
            "env": received_environment()}
    return (200 if healthy else 503), body


# ------------------------------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "voicegrow-probe/1"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass  # one line per request is written by reply()

    def reply(self, status: int, body: dict, started: float) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Instance", INSTANCE)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        elapsed = (time.monotonic() - started) * 1000
        log(f'{self.client_address[0]} "{self.command} {self.path}" {status} {elapsed:.0f}ms')

    def route(self) -> None:
        started = time.monotonic()
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            self.rfile.read(int(length))
        path = self.path.split("?", 1)[0]
        if self.command not in ("GET", "HEAD"):
            self.reply(405, {"error": "method not allowed"}, started)
        elif path == "/api/v1/health":
            self.reply(200, {"status": "ok", "instance": INSTANCE}, started)
        elif path == "/api/v1/health/detail":
            status, body = detail()
            self.reply(status, body, started)
        elif path == "/api/v1/instance":
            self.reply(200, {"instance": INSTANCE}, started)
        else:
            self.reply(404, {"error": "not found", "path": path}, started)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = route


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look the address up in DNS (getfqdn): not needed here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = INSTANCE, self.server_address[1]


# ------------------------------------------------------------------------------------------------
# WebSocket echo


async def echo(connection) -> None:
    peer = connection.remote_address[0] if connection.remote_address else "-"
    path = getattr(getattr(connection, "request", None), "path", "/")
    log(f'{peer} "WS {path}" open')
    count = 0
    try:
        async for message in connection:
            count += 1
            await connection.send(message)
    except Exception as exc:  # noqa: BLE001 - a client going away is not the server's error
        log(f'{peer} "WS {path}" error {short(exc)}')
    log(f'{peer} "WS {path}" closed after {count} messages')


async def serve_websocket(host: str, port: int, stop: asyncio.Event) -> None:
    from websockets.asyncio.server import serve

    async with serve(echo, host or None, port, ping_interval=20):
        await stop.wait()


def main() -> int:
    host = env("SERVER_HOST", "0.0.0.0")
    http_port = port_from_env("HTTP_PORT", 8000)
    ws_port = port_from_env("WS_PORT", 4399)
    http = Server((host, http_port), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    log(f"voicegrow-probe listening: http {host}:{http_port}, websocket {host}:{ws_port}; "
        f"DEBUG={env('DEBUG')} LOG_LEVEL={env('LOG_LEVEL')} WORKERS={env('WORKERS')}")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        loop.run_until_complete(serve_websocket(host, ws_port, stop))
    finally:
        http.shutdown()
        http.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
