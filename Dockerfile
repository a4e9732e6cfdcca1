# syntax=docker/dockerfile:1
#
# The sluice image: one static binary (musl) on distroless/static, running as
# non-root (uid 65532). The default command runs the controllers; the same
# image runs any CLI command (`docker run --rm IMAGE version`).
#
#   docker build -t ghcr.io/sluice-gitops/sluice:v0.1.0 .
#
# This file is not built in the development sandbox (it has no Docker
# engine); keep it in step with the workspace: Rust version from
# rust-toolchain / Cargo.toml (1.95), the `sluice` package, the lock file.
# `make image` (scripts/image, scripts/oci-image.py) builds the same image
# without Docker: the binary at /usr/local/bin/sluice, a CA bundle, user
# 65532, entrypoint `sluice`, command `controller`, the same ports; that
# one is the image the tests run (crates/sluice/tests/image.rs).

FROM docker.io/library/rust:1.95-alpine AS build
# ring (TLS) needs a C compiler and the musl headers; everything else is Rust.
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# On Alpine the host target is *-unknown-linux-musl, linked statically.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sluice \
    && cp target/release/sluice /sluice \
    && /sluice version

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.source="https://github.com/sluice-gitops/sluice" \
      org.opencontainers.image.description="sluice: a lightweight GitOps engine for k3s, a drop-in for Flux's controllers" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /sluice /usr/local/bin/sluice
USER 65532:65532
# 9090 artifacts (Service source-controller:80), 8080 metrics, 9440 probes.
EXPOSE 9090 8080 9440
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["controller"]
