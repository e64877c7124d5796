# srs-proxy in a container: a multi-stage build (Rust toolchain and npm only
# in the build stages) into a small Debian runtime image.
#
#   docker build -t srs-proxy .
#   docker run --rm --network host \
#       --security-opt seccomp=unconfined --ulimit memlock=-1:-1 srs-proxy
#
# What io_uring needs from the container runtime:
# * seccomp: Docker 25+ and containerd's default profiles block
#   io_uring_setup, io_uring_enter and io_uring_register. Run with
#   `--security-opt seccomp=unconfined`, or a profile of your own that adds
#   those three system calls (Kubernetes: seccompProfile Unconfined or
#   Localhost; deploy/k8s/srs-proxy.yaml).
# * memlock: each executor registers about 1 MiB of I/O buffers and its
#   rings, which count against RLIMIT_MEMLOCK (often 64 KiB or 8 MiB in
#   containers). `--ulimit memlock=-1:-1`, or the IPC_LOCK capability, which
#   exempts the process from the limit (what the Kubernetes manifest uses).
# * UDP ports: WebRTC and SRT media arrive on PROXY_WEBRTC_SERVER and
#   PROXY_SRT_SERVER; publish them as /udp.

ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG NODE_IMAGE=docker.io/library/node:20-bookworm-slim
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin srs-proxy \
    && strip target/release/srs-proxy

# The player pages' libraries (mpegts.js, hls.js) come from npm.
FROM ${NODE_IMAGE} AS players
WORKDIR /src
COPY players players
COPY scripts/install-players.sh scripts/install-players.sh
RUN bash scripts/install-players.sh --libs-only && rm -rf players/.npm

FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build /src/target/release/srs-proxy /usr/local/bin/srs-proxy
COPY --from=players /src/players /srv/srs-proxy/players
WORKDIR /srv/srs-proxy
# The SRS proxy's default ports; the system API stays on its own port so an
# orchestrator can keep it internal.
ENV PROXY_STATIC_FILES=/srv/srs-proxy/players \
    PROXY_PIN_CORES=off
EXPOSE 11935/tcp 18080/tcp 11985/tcp 12025/tcp 18000/udp 20080/udp
# SIGTERM drains: live sessions get PROXY_GRACE_QUIT_TIMEOUT (20 s).
STOPSIGNAL SIGTERM
# Root inside the container, with every capability dropped by the
# orchestrator but IPC_LOCK (the memlock exemption, which an unprivileged
# user would not keep): see deploy/k8s/srs-proxy.yaml.
ENTRYPOINT ["/usr/local/bin/srs-proxy"]
