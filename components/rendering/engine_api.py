"""The engine API filter: nginx in front of the Docker engine's socket, passing on only the reads
that the log collector (Alloy) and cAdvisor make, so that neither mounts the socket.

Engine access is root on the host, and a read-only bind mount of the socket does not restrict the
API. Through the filter, a client on its network can list containers, inspect one, follow its
logs and ask the engine's version and information: nothing that starts, changes or enters a
container, and none of the reads that copy files out of one (`archive`, `export`).
"""

from __future__ import annotations

PORT = 2375
CONFIG_DIR = "/etc/nginx/engine-api"
CONFIG_NAME = "nginx.conf"
SOCKET = "/var/run/docker.sock"
ALIAS = "engine-api"
URL = f"tcp://{ALIAS}:{PORT}"
"""How the clients name the engine (Alloy's `host`, cAdvisor's `--docker`)."""

READ_PATHS = r"^(/v[0-9]+\.[0-9]+)?/(_ping|version|info|containers/json|containers/[A-Za-z0-9][A-Za-z0-9_.-]*/(json|logs))$"
"""The API paths passed on, with or without the API version prefix."""

REFUSED_BODY = '{"message":"refused by the engine API filter: only reads of containers and their logs pass"}'


def render_engine_api_conf() -> str:
    """nginx.conf of the filter: GET (and HEAD) of READ_PATHS go to the socket, everything else is 403.

    The engine is sent the path nginx matched (normalised and decoded), not the client's own
    spelling of it, so that no `..` or percent-encoding reaches the engine as another endpoint.
    One process (`master_process off`) of root (`user root`): a master would switch its workers
    to another user, and nginx hands its temporary directories to the worker user, both of which
    take a capability; this one opens the socket as its owner and needs none.
    Logs are streamed (no buffering, no read timeout short of a day) for Alloy's followers.
    """
    return f"""# The engine API filter (rendered by the program).
master_process off;
daemon off;
user root;
pid /tmp/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 256;
}}
http {{
    access_log off;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    upstream engine {{
        server unix:{SOCKET};
    }}
    server {{
        listen {PORT};
        default_type application/json;
        error_page 403 @refused;
        location ~ "{READ_PATHS}" {{
            limit_except GET {{
                deny all;
            }}
            proxy_pass http://engine$uri$is_args$args;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 24h;
        }}
        location / {{
            return 403;
        }}
        location @refused {{
            return 403 '{REFUSED_BODY}\\n';
        }}
    }}
}}
"""
