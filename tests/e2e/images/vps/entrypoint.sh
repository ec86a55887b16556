#!/bin/sh
# Host keys made at first start; AUTHORIZED_KEY lets root and deploy log in with that key.
set -eu
ssh-keygen -A >/dev/null
for home in /root /home/deploy; do
  mkdir -p "$home/.ssh"
  printf '%s\n' "${AUTHORIZED_KEY:?AUTHORIZED_KEY must hold an SSH public key}" >"$home/.ssh/authorized_keys"
  chmod 700 "$home/.ssh"
  chmod 600 "$home/.ssh/authorized_keys"
done
chown -R deploy:deploy /home/deploy/.ssh
exec /usr/sbin/sshd -D -e
