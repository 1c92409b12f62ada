# syntax=docker/dockerfile:1
# The sonde image: built in a full Rust image, run from a small Debian one as a non-root user.
# Build: docker build -t REGISTRY/sonde:TAG .   (see deploy/kubernetes/README.md)

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and build artefacts between builds; the binary is copied out
# of the cached target directory so the next stage can see it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sonde \
    && cp target/release/sonde /usr/local/bin/sonde

FROM debian:bookworm-slim AS runtime
# CA roots for TLS verification (rustls reads the system store); `sh` and `tar` stay, for the
# Kubernetes Jobs' command line and `kubectl cp`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sonde \
    && useradd --system --uid 10001 --gid sonde --home-dir /nonexistent --shell /usr/sbin/nologin sonde
COPY --from=build /usr/local/bin/sonde /usr/local/bin/sonde
USER 10001:10001
WORKDIR /results
ENTRYPOINT ["sonde"]
CMD ["--help"]
