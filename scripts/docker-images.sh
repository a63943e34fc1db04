#!/usr/bin/env bash
# Builds the base images that ./Dockerfile and the examples/hello demo start
# FROM, for machines whose Docker engine cannot pull images (CI here). Where
# images can be pulled you do not need this script: `docker build` fetches the
# official `rust:1-bookworm` image by itself.
#
#   bash scripts/docker-images.sh                 build the missing images
#   bash scripts/docker-images.sh --force         rebuild them
#   bash scripts/docker-images.sh [--force] demo  only autopilot-demo-base (on a
#                                                 machine that can pull rust:1-bookworm)
#   bash scripts/docker-images.sh [--force] rust  only rust:1-bookworm
#   bash scripts/docker-images.sh [--force] mysql only autopilot-mysql-base:bookworm
#   bash scripts/docker-images.sh [--force] volume only autopilot-volume-base:bookworm
#
# With no image named it builds rust and demo (what ./Dockerfile and the hello
# demo need); the examples' tests name theirs.
#
# Each image is built only when its tag is missing (cached by tag):
#
#   rust:1-bookworm  (the tag ./Dockerfile's build stage names, read from it)
#       Debian bookworm (debootstrap --variant=minbase) + gcc + libc6-dev, plus
#       THIS machine's Rust toolchain copied in, because bookworm's own rustc is
#       too old for edition 2024. Laid out like the official image:
#       RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo, cargo and
#       rustc in /usr/local/cargo/bin.
#   autopilot-demo-base:bookworm
#       Debian bookworm minbase + busybox (httpd, wget), jq, nginx, and the
#       consul binary (Debian 11's package, as scripts/install-deps.sh installs
#       it). The demo's consul, app and frontend images start from it.
#   autopilot-mysql-base:bookworm
#       Debian bookworm minbase + MariaDB 10.11 (mariadb-server, mariadb-backup,
#       mariadb-client), busybox and the consul binary: examples/mysql.
#   autopilot-volume-base:bookworm
#       Debian bookworm minbase + QEMU 7.2's qemu-nbd, qemu-io and
#       qemu-storage-daemon (qemu-utils, qemu-system-common), libnbd-bin,
#       jq, socat (QMP on a unix socket), curl (PUT to the Consul agent), busybox
#       and the consul binary: examples/volume.
#
# The Debian mirror is the one this machine's apt already uses (read from
# /etc/apt/sources.list{,.d/}); downloaded packages are kept in $DEBOOTSTRAP_CACHE
# so a rebuild does not download them again. Needs root (debootstrap).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEMO_BASE="autopilot-demo-base:bookworm"
MYSQL_BASE="autopilot-mysql-base:bookworm"
VOLUME_BASE="autopilot-volume-base:bookworm"
SUITE="bookworm"
DEBOOTSTRAP_CACHE="${DEBOOTSTRAP_CACHE:-/var/cache/autopilot/debootstrap}"
export DEBIAN_FRONTEND=noninteractive

log() { echo "docker-images: $*"; }
die() { echo "docker-images: ERROR: $*" >&2; exit 1; }

FORCE=0
WANT_RUST=0
WANT_DEMO=0
WANT_MYSQL=0
WANT_VOLUME=0
for arg in "$@"; do
    case "$arg" in
    --force) FORCE=1 ;;
    rust) WANT_RUST=1 ;;
    demo) WANT_DEMO=1 ;;
    mysql) WANT_MYSQL=1 ;;
    volume) WANT_VOLUME=1 ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
    esac
done
if [ $((WANT_RUST + WANT_DEMO + WANT_MYSQL + WANT_VOLUME)) -eq 0 ]; then WANT_RUST=1; WANT_DEMO=1; fi

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap)"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (docker info failed)"

# The build stage's image, exactly as the Dockerfile names it.
RUST_IMAGE="$(sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]\{1,\}\)[[:space:]]\{1,\}AS[[:space:]]\{1,\}build[[:space:]]*$/\1/ip' Dockerfile | head -1)"
[ -n "$RUST_IMAGE" ] || die "no 'FROM <image> AS build' line in ./Dockerfile"

have_image() { [ "$FORCE" -eq 0 ] && docker image inspect "$1" >/dev/null 2>&1; }

# ------------------------------------------------------------------ helpers

# Prints "URI [KEYRING]" of this machine's main Debian archive: the first
# enabled `deb` source whose suite is this release's codename and that has the
# `main` component.
debian_mirror() {
    local codename f
    # shellcheck source=/dev/null
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [ -n "$codename" ] || return 1
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        case "$f" in
        *.sources)
            awk -v want="$codename" '
                function flush(   n, i, s, ok, okc) {
                    if (!done && uris != "" && types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
                        n = split(suites, s, /[ \t]+/); ok = 0
                        for (i = 1; i <= n; i++) if (s[i] == want) ok = 1
                        n = split(comps, s, /[ \t]+/); okc = 0
                        for (i = 1; i <= n; i++) if (s[i] == "main") okc = 1
                        if (ok && okc) { split(uris, s, /[ \t]+/); print s[1] (key ~ /^\// ? " " key : ""); done = 1 }
                    }
                    types = suites = comps = uris = key = ""; enabled = "yes"
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                /^[^ \t]/ {
                    k = tolower($0); sub(/:.*/, "", k); v = $0; sub(/^[^:]*:[ \t]*/, "", v)
                    if (k == "types") types = v; else if (k == "suites") suites = v
                    else if (k == "components") comps = v; else if (k == "uris") uris = v
                    else if (k == "enabled") enabled = v; else if (k == "signed-by") key = v
                }
                END { flush() }
            ' "$f"
            ;;
        *)
            awk -v want="$codename" '
                !done && $1 == "deb" {
                    line = $0; sub(/^deb[ \t]+/, "", line); opts = ""
                    if (line ~ /^\[/) { opts = line; sub(/\].*/, "", opts); sub(/^[^]]*\][ \t]*/, "", line) }
                    n = split(line, w, /[ \t]+/)
                    if (n < 3 || w[2] != want) next
                    okc = 0; for (i = 3; i <= n; i++) if (w[i] == "main") okc = 1
                    if (!okc) next
                    key = ""; if (match(opts, /signed-by=[^ \t]+/)) key = substr(opts, RSTART + 10, RLENGTH - 10)
                    print w[1] (key != "" ? " " key : ""); done = 1
                }
            ' "$f"
            ;;
        esac | head -1 | grep . && return 0
    done
    return 1
}

WORK=""
cleanup() {
    [ -n "$WORK" ] && [ -d "$WORK" ] || return 0
    # debootstrap mounts proc/sys inside the target; never rm through a mount.
    local m
    for m in $(findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r); do umount -l "$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

# debootstrap_rootfs DIR PACKAGES: a minimal bookworm root filesystem in DIR.
debootstrap_rootfs() {
    local dir="$1" include="$2" mirror keyring start=$SECONDS
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "apt-get install debootstrap"
        apt-get -q update >/dev/null
        apt-get -q install -y --no-install-recommends debootstrap >/dev/null
    fi
    read -r mirror keyring < <(debian_mirror) \
        || die "could not find this machine's Debian archive in /etc/apt/sources.list{,.d/}"
    mkdir -p "$DEBOOTSTRAP_CACHE"
    log "debootstrap --variant=minbase $SUITE ($mirror) + $include"
    local args=(--variant=minbase --include="$include" --cache-dir="$DEBOOTSTRAP_CACHE")
    [ -n "${keyring:-}" ] && args+=(--keyring="$keyring")
    if ! debootstrap "${args[@]}" "$SUITE" "$dir" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
        tail -n 30 "$WORK/debootstrap.log" >&2
        [ -f "$dir/debootstrap/debootstrap.log" ] && tail -n 30 "$dir/debootstrap/debootstrap.log" >&2
        die "debootstrap failed"
    fi
    # Slim down; the host's resolver and name must not end up in an image
    # (Docker provides both at run time).
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin \
        "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* \
        "$dir"/usr/share/info/* "$dir"/usr/share/locale/* "$dir"/var/log/*.log \
        "$dir"/tmp/* "$dir"/debootstrap
    : >"$dir/etc/resolv.conf"
    echo localhost >"$dir/etc/hostname"
    log "rootfs ready in $((SECONDS - start))s ($(du -sh --one-file-system "$dir" | cut -f1))"
}

# import_rootfs DIR TAG [docker import --change ...]: the directory as an image.
import_rootfs() {
    local dir="$1" tag="$2" start=$SECONDS
    shift 2
    log "docker import -> $tag"
    tar --numeric-owner --one-file-system -C "$dir" -cf - . \
        | docker import "$@" -m "built by scripts/docker-images.sh from Debian $SUITE packages" - "$tag" >/dev/null
    log "$tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%d MB", $1/1e6}') in $((SECONDS - start))s"
}

# ------------------------------------------------------------------ rust:1-bookworm

build_rust_image() {
    local root="$WORK/rust" sysroot toolchain start=$SECONDS
    sysroot="$(rustc --print sysroot 2>/dev/null)" || die "no rustc on this machine (needed to build $RUST_IMAGE)"
    toolchain="$(basename "$sysroot")"
    log "building $RUST_IMAGE with this machine's toolchain $toolchain ($(rustc --version))"
    debootstrap_rootfs "$root" "ca-certificates,gcc,libc6-dev"
    # The toolchain, without its HTML docs (most of its size).
    mkdir -p "$root/usr/local/rustup/toolchains/$toolchain" "$root/usr/local/cargo/bin"
    tar -C "$sysroot" --exclude=./share/doc -cf - . | tar -C "$root/usr/local/rustup/toolchains/$toolchain" -xf -
    local bin
    for bin in "$root/usr/local/rustup/toolchains/$toolchain"/bin/*; do
        ln -s "../../rustup/toolchains/$toolchain/bin/$(basename "$bin")" "$root/usr/local/cargo/bin/"
    done
    chroot "$root" /usr/local/cargo/bin/cargo --version >/dev/null || die "cargo does not run in the image"
    import_rootfs "$root" "$RUST_IMAGE" \
        -c 'ENV RUSTUP_HOME=/usr/local/rustup' \
        -c 'ENV CARGO_HOME=/usr/local/cargo' \
        -c 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]'
    rm -rf --one-file-system "$root"
    log "$RUST_IMAGE built in $((SECONDS - start))s"
}

# ------------------------------------------------------------------ base images

# build_base TAG PACKAGES: Debian minbase + PACKAGES (comma-separated) + the
# consul binary this machine uses, imported as TAG.
build_base() {
    local tag="$1" packages="$2" root consul start=$SECONDS
    root="$WORK/$(echo "$tag" | tr ':/' '__')"
    consul="$(command -v consul || true)"
    if [ -z "$consul" ]; then
        log "no consul on this machine: running scripts/install-deps.sh"
        bash scripts/install-deps.sh
        consul="$(command -v consul || echo /usr/local/bin/consul)"
    fi
    [ -x "$consul" ] || die "no consul binary"
    log "building $tag ($("$consul" version | head -1))"
    debootstrap_rootfs "$root" "$packages"
    install -m 0755 "$consul" "$root/usr/local/bin/consul"
    import_rootfs "$root" "$tag" \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]'
    rm -rf --one-file-system "$root"
    log "$tag built in $((SECONDS - start))s"
}

# ------------------------------------------------------------------ main

WANTED=()
[ "$WANT_RUST" -eq 1 ] && WANTED+=("$RUST_IMAGE")
[ "$WANT_DEMO" -eq 1 ] && WANTED+=("$DEMO_BASE")
[ "$WANT_MYSQL" -eq 1 ] && WANTED+=("$MYSQL_BASE")
[ "$WANT_VOLUME" -eq 1 ] && WANTED+=("$VOLUME_BASE")
ensure_workdir() {
    [ -n "$WORK" ] || WORK="$(mktemp -d /var/tmp/autopilot-images.XXXXXX)"
    chmod 755 "$WORK"
}
if [ "$WANT_RUST" -eq 1 ] && ! have_image "$RUST_IMAGE"; then
    ensure_workdir
    build_rust_image
fi
if [ "$WANT_DEMO" -eq 1 ] && ! have_image "$DEMO_BASE"; then
    ensure_workdir
    build_base "$DEMO_BASE" "busybox,jq,nginx,ca-certificates"
fi
if [ "$WANT_MYSQL" -eq 1 ] && ! have_image "$MYSQL_BASE"; then
    ensure_workdir
    build_base "$MYSQL_BASE" "busybox,ca-certificates,procps,mariadb-server,mariadb-backup,mariadb-client"
fi
if [ "$WANT_VOLUME" -eq 1 ] && ! have_image "$VOLUME_BASE"; then
    ensure_workdir
    build_base "$VOLUME_BASE" "busybox,ca-certificates,procps,qemu-utils,qemu-system-common,libnbd-bin,jq,socat,curl"
fi
log "ok: ${WANTED[*]} (cached by tag; --force rebuilds)"
