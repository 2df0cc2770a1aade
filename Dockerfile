# syntax=docker/dockerfile:1.7
#
# Herald container image: a release build of the `herald` binary on a distroless runtime.
#
#   docker build -t herald:0.1.0 .
#   docker run --rm -p 6001:6001 -p 9601:9601 herald:0.1.0              # development app
#   docker run --rm -p 6001:6001 -p 9601:9601 \
#     -v "$PWD/herald.toml:/etc/herald/herald.toml:ro" \
#     -e HERALD_CONFIG=/etc/herald/herald.toml \
#     -e HERALD_APPS__0__SECRET=a-long-random-secret herald:0.1.0
#
# Configuration comes from a mounted file (`--config FILE` or HERALD_CONFIG) and/or the
# HERALD_<SECTION>__<KEY> environment; see config/herald.toml. With neither, Herald serves
# its public development app and logs a warning. The Helm chart in helm/herald mounts the
# file and injects app secrets from a Kubernetes Secret.
#
# The builder and the runtime share a Debian release (bookworm = debian12), so the binary's
# glibc requirement is met by the runtime image.

ARG RUST_VERSION=1.95

############################ builder ############################
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src

# The crate (see .dockerignore for what is left out); the lock file is honoured (--locked).
COPY . .

# BuildKit cache mounts keep the registry and target/ between builds without baking them
# into a layer; the binary is copied out of the cached target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin herald \
    && install -D -m 0755 target/release/herald /out/herald \
    && /out/herald --version

############################ runtime ############################
# distroless/cc: glibc, libgcc and CA certificates, no shell or package manager.
# The :nonroot tag runs as uid/gid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

LABEL org.opencontainers.image.title="herald" \
      org.opencontainers.image.description="Herald: a self-hosted Pusher Channels server"

COPY --from=builder /out/herald /usr/local/bin/herald

# Numeric user so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532

# 6001: WebSocket + REST API (server.port); 9601: /metrics, /health, /ready (metrics.port).
EXPOSE 6001 9601

# Herald drains on SIGTERM (the default stop signal): /ready fails, sockets close with 4200.
STOPSIGNAL SIGTERM

# No HEALTHCHECK: the image has no shell or HTTP client. Orchestrators should probe
# http://:9601/health (liveness) and http://:9601/ready (readiness) themselves.

ENTRYPOINT ["herald"]
