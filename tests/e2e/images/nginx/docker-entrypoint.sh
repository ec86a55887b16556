#!/bin/sh
# Entry point of the nginx stand-in image, with the behaviour of the official image's: when the
# command is nginx, run the configuration scripts in /docker-entrypoint.d/ in version order
# (executable *.sh are run, executable *.envsh are sourced, anything else is ignored), then exec
# the command. NGINX_ENTRYPOINT_QUIET_LOGS=1 silences its messages.
set -e

say() {
    [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$0: $*"
}

if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
    scripts="$(find /docker-entrypoint.d/ -follow -mindepth 1 -maxdepth 1 -type f -print | sort -V)"
    if [ -n "$scripts" ]; then
        say "/docker-entrypoint.d/ is not empty, will attempt to perform configuration"
        for f in $scripts; do
            case "$f" in
                *.envsh)
                    if [ -x "$f" ]; then say "Sourcing $f"; . "$f"; else say "Ignoring $f, not executable"; fi ;;
                *.sh)
                    if [ -x "$f" ]; then say "Launching $f"; "$f"; else say "Ignoring $f, not executable"; fi ;;
                *) say "Ignoring $f" ;;
            esac
        done
        say "Configuration complete; ready for start up"
    else
        say "No files found in /docker-entrypoint.d/, skipping configuration"
    fi
fi

exec "$@"
