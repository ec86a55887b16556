#!/bin/sh
# Render /etc/nginx/templates/**/*.template into /etc/nginx/conf.d/ with envsubst, replacing
# only variables that are defined in the environment, as the official image does.
#   NGINX_ENVSUBST_TEMPLATE_DIR     (default /etc/nginx/templates)
#   NGINX_ENVSUBST_TEMPLATE_SUFFIX  (default .template)
#   NGINX_ENVSUBST_OUTPUT_DIR       (default /etc/nginx/conf.d)
#   NGINX_ENVSUBST_FILTER           (regular expression the variable names must match)
set -e

me="$(basename "$0")"
say() {
    [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$me: $*"
}

template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
filter="${NGINX_ENVSUBST_FILTER:-}"

[ -d "$template_dir" ] || exit 0
if [ ! -w "$output_dir" ]; then
    say "ERROR: $template_dir exists, but $output_dir is not writable"
    exit 0
fi

names="$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | grep -E -- "${filter:-.}" || true)"
variables="$(printf '${%s} ' $names)"

find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
    relative="${template#"$template_dir/"}"
    output="$output_dir/${relative%"$suffix"}"
    mkdir -p "$(dirname "$output")"
    say "Running envsubst on $template to $output"
    envsubst "$variables" <"$template" >"$output"
done
