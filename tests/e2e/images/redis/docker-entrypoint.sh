#!/bin/sh
# Entry point of the Redis stand-in image, with the behaviour of the official image's:
#   - a first argument starting with "-" or ending in ".conf" means arguments for the server:
#     "redis-server" is prepended (so the command may be "/usr/local/etc/redis/redis.conf");
#   - for the server, as root: give the working directory (/data) to user redis, restart as redis;
#   - files are created with umask 0077 unless another umask than 0022 is set;
#   - protected mode is off by default, as the official image builds Redis that way: unless the
#     arguments or the configuration file set protected-mode, "--protected-mode no" is added.
set -e

case "$1" in
    -* | *.conf) set -- redis-server "$@" ;;
esac

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec gosu redis "$0" "$@"
fi

if [ "$(umask)" = 0022 ]; then
    umask 0077
fi

if [ "$1" = redis-server ]; then
    set_by_user=no
    for arg in "$@"; do
        case "$arg" in *protected-mode*) set_by_user=yes ;; esac
    done
    if [ -n "${2:-}" ] && [ -f "$2" ] && grep -qiE '^[[:space:]]*protected-mode[[:space:]]' "$2"; then
        set_by_user=yes
    fi
    if [ "$set_by_user" = no ]; then
        set -- "$@" --protected-mode no
    fi
fi

exec "$@"
