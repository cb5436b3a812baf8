# syntax=docker/dockerfile:1
# The `cdc` binary in a small image: docs/operating.md#container-image.
#
#   docker build -t cdc:0.1.0 .
#   docker run --rm cdc:0.1.0 connectors
#
# Stage 1 builds `cdc` in release with the workspace's locked dependencies (Cargo.lock);
# stage 2 is distroless (glibc, libgcc, CA certificates; no shell, no package manager)
# with the binary and nothing else, run as the image's non-root user.

# The toolchain CI tests with (docs/performance.md names it); Debian 12 like the runtime,
# so the binary needs no newer glibc than the runtime image has.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# .dockerignore keeps the context to the workspace's sources (no target/, no .git).
COPY . .
# Cache mounts keep the registry and the build directory between builds, so the binary is
# copied out of target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cdc-cli --bin cdc \
    && install -D -m 0755 target/release/cdc /out/cdc

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/cdc /usr/local/bin/cdc
# distroless's "nonroot" user (uid and gid 65532), numeric so that Kubernetes'
# runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
# Metrics, /healthz and /readyz when the pipeline sets pipeline.metrics.port (9249 in
# deploy/kubernetes) and pipeline.metrics.address: 0.0.0.0.
EXPOSE 9249
ENTRYPOINT ["cdc"]
CMD ["--help"]
