#!/bin/sh
# Keeps the proxy's certificate in /tls: a temporary self-signed one until Let's Encrypt has
# answered (nginx cannot start without a certificate), then the real one, renewed on a schedule.
# The proxy reloads nginx when /tls/fullchain.pem changes.
#   ACME_DOMAINS  space-separated hosts      ACME_EMAIL   account address
#   ACME_SERVER   ACME directory URL         RENEW_HOURS  hours between renewal attempts
set -u
umask 077 # the private key is the proxy's alone (this container runs as the proxy's user)
TLS=/tls

if [ ! -s "$TLS/fullchain.pem" ]; then
  python3 - "$TLS" $ACME_DOMAINS <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

directory, hosts = sys.argv[1], sys.argv[2:]
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
now = datetime.datetime.now(datetime.timezone.utc)
certificate = (
    x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=7))
    .add_extension(x509.SubjectAlternativeName([x509.DNSName(host) for host in hosts]), critical=False)
    .sign(key, hashes.SHA256())
)
with open(f"{directory}/privkey.pem", "wb") as out:
    out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
with open(f"{directory}/fullchain.pem", "wb") as out:
    out.write(certificate.public_bytes(serialization.Encoding.PEM))
PY
  echo "acme: temporary self-signed certificate in place until Let's Encrypt answers"
fi

# Whether the proxy serves this container's webroot for the first host (waiting up to 10 minutes).
# The proxy starts after this container, and a validation that fails counts against the CA's
# limits (Let's Encrypt: 5 per host and hour) and costs a 5-minute retry here.
proxy_serves_webroot() {
  python3 - $ACME_DOMAINS <<'PY'
import http.client, os, secrets, sys, time

host, token = sys.argv[1], secrets.token_urlsafe(16)
path = f"/var/www/acme/.well-known/acme-challenge/{token}"
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as probe:
    probe.write(token)
try:
    for _ in range(600):
        try:
            connection = http.client.HTTPConnection("proxy", 80, timeout=5)
            connection.request("GET", f"/.well-known/acme-challenge/{token}", headers={"Host": host})
            response = connection.getresponse()
            if response.status == 200 and response.read().decode() == token:
                sys.exit(0)
        except OSError:
            pass
        time.sleep(1)
    sys.exit(1)
finally:
    os.remove(path)
PY
}

domains=""
for host in $ACME_DOMAINS; do domains="$domains -d $host"; done
while :; do
  proxy_serves_webroot || echo "acme: the proxy does not serve the challenge webroot; asking the CA anyway" >&2
  # shellcheck disable=SC2086
  if certbot certonly --webroot -w /var/www/acme --cert-name proxy --expand --keep-until-expiring \
      --non-interactive --agree-tos --email "$ACME_EMAIL" --server "$ACME_SERVER" $domains; then
    cp -L /etc/letsencrypt/live/proxy/privkey.pem "$TLS/privkey.pem.new"
    cp -L /etc/letsencrypt/live/proxy/fullchain.pem "$TLS/fullchain.pem.new"
    if ! cmp -s "$TLS/fullchain.pem.new" "$TLS/fullchain.pem"; then
      mv "$TLS/privkey.pem.new" "$TLS/privkey.pem"
      mv "$TLS/fullchain.pem.new" "$TLS/fullchain.pem"
      echo "acme: new certificate installed"
    fi
    rm -f "$TLS/privkey.pem.new" "$TLS/fullchain.pem.new"
    sleep $((RENEW_HOURS * 3600))
  else
    echo "acme: certificate request failed; retrying in 5 minutes" >&2
    sleep 300
  fi
done
