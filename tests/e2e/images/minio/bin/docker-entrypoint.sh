#!/bin/sh
# As the official image's entry point: a command that is not "minio" is taken as minio's
# arguments ("server /data ..." runs "minio server /data ...").
if [ "${1}" != "minio" ]; then
	if [ -n "${1}" ]; then
		set -- minio "$@"
	fi
fi
exec "$@"
