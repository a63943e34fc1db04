# autopilot as a static binary in an otherwise empty image, for copying into
# your own images (see README, "Use it in your image"):
#
#   docker build -t autopilot .
#
#   # in your Dockerfile:
#   COPY --from=autopilot /autopilot /usr/local/bin/autopilot
#   ENTRYPOINT ["/usr/local/bin/autopilot", "-config", "/etc/autopilot.json5"]
#
# The build stage is the official Rust image. On a machine whose Docker engine
# cannot pull images, `bash scripts/docker-images.sh` builds a stand-in with
# this exact tag from Debian packages and the machine's own Rust toolchain.
FROM rust:1-bookworm AS build
# Marks this stage's leftover untagged image, so scripts can find and remove it.
LABEL org.autopilot.stage=build

WORKDIR /src
COPY . .

# Crates: normally cargo downloads them here. A machine whose containers cannot
# reach crates.io puts them in the build context first with
#   cargo vendor --locked target/docker-vendor
# (tests/docker/hello.sh does; target/ is git-ignored and .dockerignore sends
# only that part of it), and then this step reads them offline instead.
#
# crt-static links glibc statically, so the binary needs no libc at run time:
# it runs in `FROM scratch` and in any distribution's image. relocation-model
# =static makes it a non-PIE executable: no start-up relocations (57 pages
# written before main, 277 KiB of relocation table in the file), at the cost
# of a fixed load address for autopilot's own code (stacks, heap and mmaps
# are still randomized), as for tini-static.
RUN set -eu; \
    if [ -d target/docker-vendor ]; then \
        set -- --offline \
            --config 'source.crates-io.replace-with="docker-vendor"' \
            --config 'source.docker-vendor.directory="target/docker-vendor"'; \
    fi; \
    RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
        cargo build --release --locked --target x86_64-unknown-linux-gnu "$@"; \
    install -m 0755 target/x86_64-unknown-linux-gnu/release/autopilot /autopilot; \
    /autopilot -version

FROM scratch
LABEL org.opencontainers.image.title=autopilot
COPY --from=build /autopilot /autopilot
ENTRYPOINT ["/autopilot"]
