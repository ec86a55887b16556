#!/usr/local/bin/python
"""Entry point of the Synapse stand-in image, behaving like the official image's /start.py.

    /start.py [run] [SYNAPSE ARGS...]   (default) run Synapse
    /start.py generate                  write a homeserver.yaml and signing key, then exit

Both modes switch to the user UID:GID from the environment (GID defaults to 991); when UID is
unset and the container runs as root, to 991:991. Only "generate" changes the ownership of the
data directory: in "run" mode the configuration must be readable, and the data directories
writable, by that user already.

run:      SYNAPSE_CONFIG_PATH (default SYNAPSE_CONFIG_DIR/homeserver.yaml, SYNAPSE_CONFIG_DIR
          default /data) must exist unless the arguments name a config; SYNAPSE_WORKER picks the
          module (default synapse.app.homeserver); jemalloc is preloaded when installed.
generate: needs SYNAPSE_SERVER_NAME and SYNAPSE_REPORT_STATS (yes|no); optional
          SYNAPSE_CONFIG_DIR, SYNAPSE_CONFIG_PATH, SYNAPSE_DATA_DIR (default /data),
          SYNAPSE_LOG_LEVEL (default INFO), SYNAPSE_ENABLE_METRICS.
"""

import os
import platform
import subprocess
import sys
from typing import Mapping, NoReturn, Optional

TRUE = ("y", "yes", "t", "true", "on", "1")
FALSE = ("n", "no", "f", "false", "off", "0")

LOG_CONFIG = """\
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
loggers:
  synapse.storage.SQL:
    level: INFO
root:
  level: {level}
  handlers: [console]
disable_existing_loggers: false
"""


def say(text: str) -> None:
    print(text, flush=True)


def fail(text: str) -> NoReturn:
    print(text, file=sys.stderr, flush=True)
    sys.exit(2)


def flag(env: Mapping[str, str], name: str, default: str) -> bool:
    value = env.get(name, default).lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    fail(f"Environment variable {name} must be yes or no, got {value!r}")


def target_user(env: Mapping[str, str]) -> Optional[str]:
    """'uid:gid' to switch to, or None to stay the current user."""
    if "UID" in env:
        return f"{int(env['UID'])}:{int(env.get('GID', '991'))}"
    if os.getuid() == 0:
        return "991:991"
    return None


def config_locations(env: Mapping[str, str]) -> tuple[str, str]:
    config_dir = env.get("SYNAPSE_CONFIG_DIR", "/data")
    return config_dir, env.get("SYNAPSE_CONFIG_PATH", config_dir + "/homeserver.yaml")


def generate(env: Mapping[str, str], user: Optional[str]) -> None:
    for name in ("SYNAPSE_SERVER_NAME", "SYNAPSE_REPORT_STATS"):
        if name not in env:
            fail(f"Environment variable '{name}' is mandatory in `generate` mode.")
    server_name = env["SYNAPSE_SERVER_NAME"]
    config_dir, config_path = config_locations(env)
    data_dir = env.get("SYNAPSE_DATA_DIR", "/data")

    os.makedirs(config_dir, exist_ok=True)
    log_config = f"{config_dir}/{server_name}.log.config"
    if not os.path.exists(log_config):
        say(f"Creating log config {log_config}")
        with open(log_config, "w") as handle:
            handle.write(LOG_CONFIG.format(level=env.get("SYNAPSE_LOG_LEVEL", "INFO")))

    command = [
        sys.executable, "-m", "synapse.app.homeserver",
        "--server-name", server_name,
        "--report-stats", env["SYNAPSE_REPORT_STATS"],
        "--config-path", config_path,
        "--config-directory", config_dir,
        "--data-directory", data_dir,
        "--generate-config",
        "--open-private-ports",
    ]
    if flag(env, "SYNAPSE_ENABLE_METRICS", "0"):
        command.append("--enable-metrics")
    if user is not None:
        say(f"Setting ownership on {data_dir} to {user}")
        os.makedirs(data_dir, exist_ok=True)
        subprocess.run(["chown", user, data_dir], check=True)
        if config_dir != data_dir:
            subprocess.run(["chown", user, config_dir, log_config], check=True)
        else:
            subprocess.run(["chown", user, log_config], check=True)
        command = ["gosu", user] + command
    subprocess.run(command, check=True)


def run(args: list[str], env: dict[str, str], user: Optional[str]) -> NoReturn:
    if "-m" not in args:
        args = ["-m", env.get("SYNAPSE_WORKER", "synapse.app.homeserver")] + args

    jemalloc = f"/usr/lib/{platform.machine()}-linux-gnu/libjemalloc.so.2"
    if os.path.isfile(jemalloc):
        env["LD_PRELOAD"] = jemalloc
    else:
        say(f"Could not find {jemalloc}, will not use")

    if not any(arg.startswith(("--config-path", "-c")) for arg in args):
        _, config_path = config_locations(env)
        if not os.path.exists(config_path):
            fail(
                f"Config file '{config_path}' does not exist. Create it (for example with the "
                "`generate` argument) or point SYNAPSE_CONFIG_PATH at an existing config file."
            )
        args = args + ["--config-path", config_path]

    say("Starting synapse with args " + " ".join(args))
    command = [sys.executable] + args
    if user is not None:
        command = ["gosu", user] + command
        os.execvpe("gosu", command, env)
    os.execve(sys.executable, command, env)


def main(argv: list[str], env: dict[str, str]) -> None:
    mode = argv[1] if len(argv) > 1 else "run"
    user = target_user(env)
    if mode == "generate":
        generate(env, user)
    elif mode == "run":
        run(argv[2:], env, user)
    elif mode == "migrate_config":
        fail("`migrate_config` is not supported by this image: provide a homeserver.yaml.")
    else:
        fail(f"Unknown execution mode '{mode}'")


if __name__ == "__main__":
    main(sys.argv, dict(os.environ))
