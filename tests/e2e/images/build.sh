#!/usr/bin/env bash
# Build the local stand-in images that replace the official images in the end-to-end tests.
# No registry is used: the base image is bootstrapped from the Debian mirror of this machine's
# own apt sources, and every other image is built FROM it with Debian's packages (Synapse from
# PyPI wheels downloaded here and installed in the image without network).
#
#   build.sh [-j JOBS] [NAME...]    build the named images (default: all), plus the base image
#   build.sh --list                 print "NAME TAG" for every image
#
# NAME is one of: base postgres postgres-next synapse nginx mysql redis minio probe certbot pebble
# prometheus alertmanager node-exporter blackbox-exporter vps. See README.md beside this
# script (and CONTRACT.md in an image's directory) for the contract each image honours. An image
# may be a variant of another's recipe: built from that image's directory with build arguments
# of its own (VARIANT_OF, BUILD_ARGS).
#
# An image is skipped when its tag exists and carries the label e2e.recipe with the hash of its
# recipe (its directory here, the base image it is built on, the wheel platform); it is rebuilt
# when the recipe changes. An image directory with a requirements.txt gets the wheels it names,
# downloaded here for the image's Python and platform (cached in .cache/wheels/), in the build
# context's wheels/ directory. The time each image took is printed and, when E2E_FIGURES names
# a file, appended to it as "image <tag> <seconds> built|cached" (and "size <tag> <MB>" for a
# built image).
#
# Runs as root (debootstrap). Environment:
#   E2E_DEBIAN_MIRROR   Debian mirror for the base image (default: read from the apt sources)
#   E2E_PYTHON          Python with pip used to download wheels (default: python3, else the
#                       project's .venv/bin/python)
#   E2E_BUILD_JOBS      images built at the same time after the base (default: 2; -j overrides)
#   E2E_BUILD_NETWORK   network of the build containers (e.g. "host" on an engine without a
#                       bridge network; default: the engine's default)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE="$ROOT/.cache"
FIGURES="${E2E_FIGURES:-/dev/null}"
LOGDIR="$CACHE/e2e-images"
WHEELS="$CACHE/wheels"
REPLACED="$CACHE/e2e-replaced-images"
LABEL=e2e.recipe
SUITE=bookworm
IMAGE_PYTHON=3.11 # Python of Debian bookworm, where the wheels are installed

NAMES=(base postgres postgres-next synapse nginx mysql redis minio probe certbot pebble prometheus alertmanager node-exporter blackbox-exporter vps)
declare -A TAG=(
  [base]=e2e.local/base:bookworm
  [postgres]=e2e.local/postgres:16
  [postgres-next]=e2e.local/postgres:17
  [synapse]=e2e.local/synapse:v1.163.2
  [nginx]=e2e.local/nginx:1.27
  [mysql]=e2e.local/mysql:8.0
  [redis]=e2e.local/redis:7
  [minio]=e2e.local/minio:stand-in
  [probe]=e2e.local/voicegrow-probe:1
  [certbot]=e2e.local/certbot:stand-in
  [pebble]=e2e.local/pebble:2.4
  [prometheus]=e2e.local/prometheus:2.42
  [alertmanager]=e2e.local/alertmanager:0.25
  [node-exporter]=e2e.local/node-exporter:1.5
  [blackbox-exporter]=e2e.local/blackbox-exporter:0.23
  [vps]=e2e.local/vps:bookworm
)

# The next PostgreSQL major version, for the major upgrade: Debian trixie's PostgreSQL 17.
declare -A VARIANT_OF=([postgres-next]=postgres)
declare -A BUILD_ARGS=([postgres-next]="DEBIAN_SUITE=trixie PG_MAJOR=17")

# Legacy builder: it needs no buildx plugin, which Debian's docker.io does not ship.
export DOCKER_BUILDKIT=0

log() { printf 'images: %s\n' "$*"; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------------------------
# Debian apt sources of this machine

# deb822 stanzas (from /etc/apt/sources.list.d/*.sources) of type deb for SUITE's suites.
deb822_stanzas() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v suite="$SUITE" 'BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; suites = ""; enabled = 1
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = $i
          else if ($i ~ /^Suites:/) suites = $i
          else if ($i ~ /^Enabled:[ \t]*[Nn]o/) enabled = 0
        }
        if (enabled && types ~ /[: \t]deb([ \t]|$)/ && index(suites, suite) > 0) { print; print "" }
      }' "$f"
  done
}

# one-line "deb ..." entries (from /etc/apt/sources.list) for SUITE's suites.
one_line_entries() {
  [[ -f /etc/apt/sources.list ]] || return 0
  grep -E "^[[:space:]]*deb[[:space:]].*[[:space:]]${SUITE}([-/][^[:space:]]*)?[[:space:]]" \
    /etc/apt/sources.list || true
}

# The mirror serving SUITE itself (not -updates or -security).
find_mirror() {
  if [[ -n "${E2E_DEBIAN_MIRROR:-}" ]]; then
    printf '%s\n' "$E2E_DEBIAN_MIRROR"
    return
  fi
  local mirror
  mirror="$(deb822_stanzas | awk -v suite="$SUITE" 'BEGIN { RS = ""; FS = "\n" }
    {
      uri = ""; hit = 0
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^URIs:/) { split($i, u, /[ \t]+/); uri = u[2] }
        if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) hit = 1 }
      }
      if (hit && uri != "") { print uri; exit }
    }')"
  if [[ -z "$mirror" ]]; then
    mirror="$(one_line_entries | sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' |
      awk -v suite="$SUITE" '$2 == suite { print $1; exit }')"
  fi
  [[ -n "$mirror" ]] || die "no Debian mirror for '$SUITE' in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set E2E_DEBIAN_MIRROR"
  printf '%s\n' "$mirror"
}

# The apt sources written into the base image: the machine's own entries for SUITE, or the
# mirror alone when they come from E2E_DEBIAN_MIRROR.
write_image_sources() { # ROOTFS MIRROR
  local rootfs="$1" mirror="$2" stanzas lines
  rm -f "$rootfs/etc/apt/sources.list" "$rootfs"/etc/apt/sources.list.d/*
  stanzas="$(deb822_stanzas)"
  lines="$(one_line_entries)"
  if [[ -z "${E2E_DEBIAN_MIRROR:-}" && -n "$stanzas" ]]; then
    printf '%s\n' "$stanzas" >"$rootfs/etc/apt/sources.list.d/debian.sources"
  elif [[ -z "${E2E_DEBIAN_MIRROR:-}" && -n "$lines" ]]; then
    printf '%s\n' "$lines" >"$rootfs/etc/apt/sources.list"
  else
    printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$rootfs/etc/apt/sources.list"
  fi
}

# ---------------------------------------------------------------------------------------------
# Recipes and their hashes

# Hash of a directory's file names, modes and contents.
hash_dir() {
  (
    cd "$1"
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    find . -type f -perm -u+x -print | LC_ALL=C sort
  ) | sha256sum | cut -d' ' -f1
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

image_recipe() {
  local value
  value="$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true)"
  [[ "$value" == "<no value>" ]] && value=""
  printf '%s\n' "$value"
}

wheel_platform() { uname -m; }

recipe_dir() { printf '%s\n' "${VARIANT_OF[$1]:-$1}"; } # NAME

recipe_hash() { # NAME
  local name="$1"
  {
    printf 'recipe of %s\n' "$name"
    if [[ "$name" == base ]]; then
      declare -f build_base write_image_sources
      hash_dir "$HERE/base"
      find_mirror
      deb822_stanzas
      one_line_entries
    else
      hash_dir "$HERE/$(recipe_dir "$name")"
      printf 'build args %s\n' "${BUILD_ARGS[$name]:-}"
      printf 'base %s\n' "$(image_id "${TAG[base]}")"
      if [[ -f "$HERE/$name/requirements.txt" ]]; then
        printf 'wheels for cp%s %s\n' "${IMAGE_PYTHON/./}" "$(wheel_platform)"
      fi
    fi
  } | sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------------------------------------
# Builders

build_base() { # HASH LOGFILE
  local hash="$1" logfile="$2" mirror rootfs include=()
  [[ "$(id -u)" == 0 ]] || die "building the base image needs root (debootstrap, chroot)"
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$logfile" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >>"$logfile" 2>&1 ||
      die "could not install debootstrap (log: $logfile)"
  }
  mirror="$(find_mirror)"
  # apt in the image needs CA certificates when a source is served over https.
  if { printf '%s\n' "$mirror"; deb822_stanzas; one_line_entries; } | grep -q 'https://'; then
    include=(--include=ca-certificates)
  fi
  rootfs="$CACHE/e2e-rootfs"
  rm -rf "$rootfs"
  log "debootstrap $SUITE from $mirror"
  debootstrap --variant=minbase "${include[@]}" "$SUITE" "$rootfs" "$mirror" >>"$logfile" 2>&1 ||
    die "debootstrap failed (log: $logfile)"

  write_image_sources "$rootfs" "$mirror"
  cp -r --preserve=mode "$HERE/base/rootfs/." "$rootfs/"
  # What Docker provides at run time, and what only made the bootstrap.
  rm -rf "$rootfs"/dev/* "$rootfs"/proc/* "$rootfs"/sys/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf \
    "$rootfs"/usr/share/doc/*/changelog* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  : >"$rootfs/etc/machine-id"

  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change "LABEL $LABEL=$hash" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    - "${TAG[base]}" >>"$logfile" 2>&1 || die "docker import failed (log: $logfile)"
  rm -rf "$rootfs"
}

# A Python with pip: E2E_PYTHON, else python3, else the project's virtual environment's.
pip_python() {
  local candidate
  for candidate in ${E2E_PYTHON:-python3 "$ROOT/.venv/bin/python"}; do
    if "$candidate" -m pip --version >/dev/null 2>&1; then
      printf '%s\n' "$candidate"
      return
    fi
  done
  die "no Python with pip to download wheels (tried ${E2E_PYTHON:-python3 and .venv/bin/python}); set E2E_PYTHON"
}

# The wheels an image's requirements.txt names, for the image's Python and platform, downloaded
# once into .cache/wheels/.
image_wheels() { # NAME LOGFILE -> prints the wheel directory
  local name="$1" logfile="$2" py arch key dir tmp platforms=() m
  local requirements="$HERE/$name/requirements.txt"
  arch="$(wheel_platform)"
  key="$( { cat "$requirements"; printf '%s %s\n' "$IMAGE_PYTHON" "$arch"; } | sha256sum | cut -c1-16)"
  dir="$WHEELS/$name-$key"
  if [[ -f "$dir/.complete" ]]; then
    printf '%s\n' "$dir"
    return
  fi
  py="$(pip_python)"
  # Debian bookworm has glibc 2.36: any manylinux wheel up to that runs there.
  for m in $(seq 36 -1 5); do platforms+=(--platform "manylinux_2_${m}_${arch}"); done
  platforms+=(--platform "manylinux2014_${arch}" --platform "manylinux2010_${arch}" --platform "manylinux1_${arch}")
  tmp="$dir.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "downloading the wheels of $name for Python $IMAGE_PYTHON on $arch" >&2
  "$py" -m pip download --quiet --dest "$tmp" --only-binary=:all: \
    --python-version "$IMAGE_PYTHON" --implementation cp --abi "cp${IMAGE_PYTHON/./}" \
    "${platforms[@]}" -r "$requirements" >>"$logfile" 2>&1 ||
    die "pip download of the wheels of $name failed (log: $logfile)"
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  printf '%s\n' "$dir"
}

build_service() { # NAME HASH LOGFILE
  local name="$1" hash="$2" logfile="$3" recipe context wheels network=() build_args=() arg
  recipe="$HERE/$(recipe_dir "$name")"
  [[ -f "$recipe/Dockerfile" ]] || die "no recipe for $name: $recipe/Dockerfile is missing"
  context="$CACHE/e2e-context/$name"
  rm -rf "$context"
  mkdir -p "$context"
  cp -r --preserve=mode "$recipe/." "$context/"
  for arg in ${BUILD_ARGS[$name]:-}; do build_args+=(--build-arg "$arg"); done
  if [[ -f "$HERE/$name/requirements.txt" ]]; then
    wheels="$(image_wheels "$name" "$logfile")"
    mkdir "$context/wheels"
    cp -l "$wheels"/*.whl "$context/wheels/" 2>/dev/null || cp "$wheels"/*.whl "$context/wheels/"
  fi
  [[ -z "${E2E_BUILD_NETWORK:-}" ]] || network=(--network "$E2E_BUILD_NETWORK")
  docker build --force-rm "${network[@]}" "${build_args[@]}" --label "$LABEL=$hash" -t "${TAG[$name]}" "$context" \
    >>"$logfile" 2>&1 || {
    tail -n 30 "$logfile" >&2
    die "docker build of ${TAG[$name]} failed (log: $logfile)"
  }
  rm -rf "$context"
}

# Build NAME unless its tag already carries the hash of its recipe; print and record the time.
ensure() { # NAME
  local name="$1" tag="${TAG[$1]}" start hash status seconds logfile replaced
  start="$(now)"
  logfile="$LOGDIR/$name.log"
  hash="$(recipe_hash "$name")"
  if [[ "$(image_recipe "$tag")" == "$hash" ]]; then
    status=cached
  else
    : >"$logfile"
    log "building $tag (log: $logfile)"
    replaced="$(image_id "$tag")"
    if [[ "$name" == base ]]; then
      build_base "$hash" "$logfile"
    else
      build_service "$name" "$hash" "$logfile"
    fi
    [[ "$(image_recipe "$tag")" == "$hash" ]] || die "$tag was built but does not carry its recipe label"
    status=built
    # The image the tag named before, now untagged, is removed by its id at the end (see
    # remove_replaced), never by a filter: the intermediate images of a build running beside this
    # one (a stack's own image, built from one of ours, carries our label) are untagged too.
    if [[ -n "$replaced" && "$replaced" != "$(image_id "$tag")" ]]; then
      printf '%s\n' "$replaced" >>"$REPLACED"
    fi
  fi
  seconds="$(elapsed "$start")"
  log "$(printf '%-30s %-6s in %6s s' "$tag" "$status" "$seconds")"
  printf 'image %s %s %s\n' "$tag" "$seconds" "$status" >>"$FIGURES"
  if [[ "$status" == built ]]; then
    printf 'size %s %s\n' "$tag" \
      "$(docker image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.0f", $1 / 1000000 }')" >>"$FIGURES"
  fi
}

# Remove the images rebuilds replaced; one still in use (a container, an image built on it) is
# refused and tried again on the next run.
remove_replaced() {
  [[ -s "$REPLACED" ]] || return 0
  local id kept=()
  for id in $(sort -u "$REPLACED"); do
    docker image rm "$id" >/dev/null 2>&1 || ! docker image inspect "$id" >/dev/null 2>&1 || kept+=("$id")
  done
  printf '%s\n' "${kept[@]}" | sed '/^$/d' >"$REPLACED"
}

# ---------------------------------------------------------------------------------------------

main() {
  local jobs="${E2E_BUILD_JOBS:-2}" wanted=() name n
  while (($#)); do
    case "$1" in
      --list)
        for name in "${NAMES[@]}"; do printf '%s %s\n' "$name" "${TAG[$name]}"; done
        return 0
        ;;
      -j) jobs="${2:?-j needs a number}"; shift 2 ;;
      -j*) jobs="${1#-j}"; shift ;;
      -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; return 0 ;;
      -*) die "unknown option $1 (see --help)" ;;
      *)
        [[ -n "${TAG[$1]:-}" ]] || die "unknown image '$1'; one of: ${NAMES[*]}"
        # Once each: two builds of one image at once would share its build directory.
        [[ " ${wanted[*]} " == *" $1 "* ]] || wanted+=("$1")
        shift
        ;;
    esac
  done
  [[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "-j needs a positive number, got '$jobs'"
  ((${#wanted[@]})) || wanted=("${NAMES[@]}")

  command -v docker >/dev/null || die "the docker command is missing (run tests/e2e/engine.sh start)"
  docker info >/dev/null 2>&1 || die "no Docker engine answers (run tests/e2e/engine.sh start)"
  mkdir -p "$CACHE" "$LOGDIR" "$WHEELS"

  # One build at a time on this machine: parallel callers wait, then find the images cached.
  exec 8>"$CACHE/e2e-images.lock"
  flock 8

  local start
  start="$(now)"
  ensure base
  local services=() pids=() failed=0
  for name in "${wanted[@]}"; do [[ "$name" == base ]] || services+=("$name"); done
  for name in "${services[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs)); do wait -n || failed=1; done
    ensure "$name" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || failed=1; done
  ((failed == 0)) || die "some images failed to build (logs in $LOGDIR)"
  remove_replaced
  log "all done in $(elapsed "$start") s"
}

main "$@"
