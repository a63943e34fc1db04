#!/usr/bin/env bash
# Installs what autopilot's test suite needs on a Debian machine (run as root).
#
# Idempotent and quick when everything is already there: it only touches apt
# when something is missing, and prints each thing it installs.
#
#   - Debian packages (apt-get install, only the missing ones).
#   - promtool: extracted from Debian's `prometheus` package, not installed as a
#     package, because the package's postinst would start a Prometheus daemon.
#   - consul: Debian 12 has no consul, Debian 11 (bullseye) ships 1.8.7. We build
#     a private, bullseye-only apt source DERIVED from this machine's own Debian
#     source (same archive URI and keyring), run apt in an isolated state dir so
#     the machine's apt config never sees bullseye, download the .deb and unpack
#     only the binary (installing the package would start a consul service).
#
# Binaries we unpack go to $DEPS_BIN (default /usr/local/bin, on PATH).
set -euo pipefail

DEPS_BIN="${DEPS_BIN:-/usr/local/bin}"
export DEBIAN_FRONTEND=noninteractive
# What we unpack must be found by the checks below (and by the tests).
case ":$PATH:" in *":$DEPS_BIN:"*) ;; *) export PATH="$DEPS_BIN:$PATH" ;; esac

# Debian packages the tests use (checked with dpkg-query, installed if missing);
# groff renders the man page, zsh and fish check the completion scripts.
APT_PACKAGES=(util-linux tini dumb-init iproute2 procps curl debootstrap groff-base zsh fish)

log() { echo "install-deps: $*"; }
die() { echo "install-deps: ERROR: $*" >&2; exit 1; }

TMP="$(mktemp -d /tmp/autopilot-deps.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root to install: $*"
}

# Run a quiet apt command; show its output only if it fails.
quiet() {
    local out="$TMP/apt.log"
    if ! "$@" >"$out" 2>&1; then
        cat "$out" >&2
        die "command failed: $*"
    fi
}

APT_UPDATED=0
apt_update_once() {
    # Only refresh the machine's package lists when we actually need apt.
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        quiet apt-get -q update
        APT_UPDATED=1
    fi
}

# Download a .deb into $2 with the machine's own apt sources.
apt_download() {
    local pkg="$1" dir="$2"
    apt_update_once
    (cd "$dir" && quiet apt-get -q -o APT::Sandbox::User=root download "$pkg")
}

# ---------------------------------------------------------------- Debian packages
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    need_root "${missing[*]}"
    apt_update_once
    log "apt-get install ${missing[*]}"
    quiet apt-get -q install -y --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------- Python packages
# tests/k8s/validate.py checks examples/kubernetes offline: PyYAML reads the
# manifests, kubernetes-validate checks them against the Kubernetes OpenAPI
# schemas it bundles (no cluster, no network); jsonschema checks the corpus against
# autopilot.schema.json (src/config/corpus_tests.rs). Installed for the `python3` on
# PATH, the one the tests run, and only when an import fails.
PY_PACKAGES=(PyYAML kubernetes-validate jsonschema)
PY_MODULES=(yaml kubernetes_validate jsonschema)
if ! command -v python3 >/dev/null 2>&1; then
    need_root python3
    apt_update_once
    log "apt-get install python3 python3-pip"
    quiet apt-get -q install -y --no-install-recommends python3 python3-pip
fi
py_missing=()
for i in "${!PY_MODULES[@]}"; do
    python3 -c "import ${PY_MODULES[$i]}" >/dev/null 2>&1 || py_missing+=("${PY_PACKAGES[$i]}")
done
if [ "${#py_missing[@]}" -gt 0 ]; then
    need_root "${py_missing[*]}"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt_update_once
        log "apt-get install python3-pip"
        quiet apt-get -q install -y --no-install-recommends python3-pip
    fi
    log "pip install ${py_missing[*]} (for $(command -v python3))"
    # A Debian python3 refuses pip installs outside a venv (PEP 668); these
    # two packages touch nothing Debian ships, so override it there.
    if ! python3 -m pip install -q --disable-pip-version-check "${py_missing[@]}" >"$TMP/pip.log" 2>&1; then
        if grep -q externally-managed "$TMP/pip.log"; then
            quiet python3 -m pip install -q --disable-pip-version-check --break-system-packages "${py_missing[@]}"
        else
            cat "$TMP/pip.log" >&2
            die "pip install ${py_missing[*]} failed"
        fi
    fi
fi
for m in "${PY_MODULES[@]}"; do
    python3 -c "import $m" >/dev/null 2>&1 || die "python3 cannot import $m after installing it"
done

# ---------------------------------------------------------------- promtool
if ! command -v promtool >/dev/null 2>&1; then
    need_root promtool
    log "installing promtool (from Debian's prometheus package) into $DEPS_BIN"
    mkdir -p "$TMP/prom"
    chmod 755 "$TMP" "$TMP/prom"
    apt_download prometheus "$TMP/prom"
    dpkg -x "$TMP"/prom/prometheus_*.deb "$TMP/prom/x"
    install -D -m 0755 "$TMP/prom/x/usr/bin/promtool" "$DEPS_BIN/promtool"
fi
promtool --version >/dev/null 2>&1 || die "promtool is not usable"

# ---------------------------------------------------------------- consul
# Print the machine's main Debian source (the entry whose suite is exactly this
# release's codename and that has the `main` component) rewritten for $1, in
# deb822 form. Tries debian.sources and sources.list first, then the rest.
derive_source() {
    local suite="$1" codename f
    # shellcheck source=/dev/null
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release"
    local files=()
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list \
             /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        case " ${files[*]-} " in *" $f "*) continue ;; esac
        files+=("$f")
    done
    for f in "${files[@]}"; do
        case "$f" in
        *.sources)
            # deb822: copy the first matching stanza (URIs, Signed-By, options)
            # with Suites/Components replaced. Continuation lines (" ...") belong
            # to the previous field, e.g. an inline Signed-By key.
            awk -v want="$codename" -v suite="$suite" '
                function flush(   i, n, s, ok, okc) {
                    if (nf > 0 && !done && types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
                        n = split(suites, s, /[ \t]+/); ok = 0
                        for (i = 1; i <= n; i++) if (s[i] == want) ok = 1
                        n = split(comps, s, /[ \t]+/); okc = 0
                        for (i = 1; i <= n; i++) if (s[i] == "main") okc = 1
                        if (ok && okc) {
                            print "Types: deb"
                            for (i = 1; i <= nf; i++) print field[i]
                            print "Suites: " suite
                            print "Components: main"
                            done = 1
                        }
                    }
                    nf = 0; types = suites = comps = ""; enabled = "yes"
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]/ { if (keep) field[nf] = field[nf] "\n" $0; next }
                {
                    key = $0; sub(/:.*/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
                    lk = tolower(key); keep = 0
                    if (lk == "types") types = val
                    else if (lk == "suites") suites = val
                    else if (lk == "components") comps = val
                    else if (lk == "enabled") enabled = val
                    else { field[++nf] = $0; keep = 1 }
                }
                END { flush() }
            ' "$f"
            ;;
        *.list)
            # One-line format: deb [opts] URI SUITE COMPONENTS...
            awk -v want="$codename" -v suite="$suite" '
                !done && $1 == "deb" {
                    line = $0; sub(/^deb[ \t]+/, "", line); opts = ""
                    if (line ~ /^\[/) { opts = line; sub(/\].*/, "", opts); sub(/^\[/, "", opts); sub(/^[^]]*\][ \t]*/, "", line) }
                    n = split(line, w, /[ \t]+/)
                    if (n < 3 || w[2] != want) next
                    okc = 0; for (i = 3; i <= n; i++) if (w[i] == "main") okc = 1
                    if (!okc) next
                    print "Types: deb"; print "URIs: " w[1]
                    print "Suites: " suite; print "Components: main"
                    m = split(opts, o, /[ \t]+/)
                    for (i = 1; i <= m; i++) if (o[i] ~ /^signed-by=/) { sub(/^signed-by=/, "", o[i]); print "Signed-By: " o[i] }
                    done = 1
                }
            ' "$f"
            ;;
        esac | { out="$(cat)"; [ -n "$out" ] && printf '%s\n' "$out"; } && return 0
    done
    return 1
}

# The version is read into a variable first: under pipefail a pipe that closes
# early (head, grep -q) can make a working consul look missing.
consul_ok() {
    local version
    command -v consul >/dev/null 2>&1 || return 1
    version="$(consul version 2>/dev/null)" || return 1
    case "$version" in "Consul v"*) return 0 ;; *) return 1 ;; esac
}

if ! consul_ok; then
    need_root consul
    log "installing consul 1.8.x (Debian bullseye package) into $DEPS_BIN"
    BX="$TMP/bullseye"
    mkdir -p "$BX/sources.d" "$BX/lists/partial" "$BX/cache/archives/partial" "$BX/deb"
    chmod -R 755 "$TMP"
    derive_source bullseye >"$BX/sources.d/bullseye.sources" \
        || die "could not find this machine's Debian archive in /etc/apt/sources.list{,.d/}"
    log "derived apt source: $(sed -n 's/^URIs:[[:space:]]*//p' "$BX/sources.d/bullseye.sources" | head -1) bullseye main"
    # Everything apt reads or writes for this lookup lives under $BX.
    APT_ISOLATED=(
        -o Dir::Etc::sourcelist=/dev/null
        -o Dir::Etc::sourceparts="$BX/sources.d"
        -o Dir::State::Lists="$BX/lists"
        -o Dir::Cache="$BX/cache"
        -o Dir::Cache::pkgcache=
        -o Dir::Cache::srcpkgcache=
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
        -o APT::Sandbox::User=root
    )
    quiet apt-get -q "${APT_ISOLATED[@]}" update
    (cd "$BX/deb" && quiet apt-get -q "${APT_ISOLATED[@]}" download consul)
    dpkg -x "$BX"/deb/consul_*.deb "$BX/x"
    install -D -m 0755 "$BX/x/usr/bin/consul" "$DEPS_BIN/consul"
    consul version | head -1 | grep -q '^Consul v1\.8\.' \
        || die "unexpected consul version: $(consul version | head -1)"
fi

log "ok: $(consul version | head -1), $(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3), tini, dumb-init, unshare, debootstrap, kubernetes-validate"
