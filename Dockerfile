# syntax=docker/dockerfile:1
#
# The cloud-lb-controller image: built from the workspace, run as a non-root user on distroless.
#
#   docker build -t REGISTRY/cloud-lb-controller:0.1.0 .
#
# Build context: the repository root (the binary's crate depends on the other workspace
# members). Why glibc on distroless rather than a static musl binary: the TLS stack (rustls with
# ring) builds C and assembly, which the stock Rust image compiles for glibc without a cross
# toolchain, and distroless "cc" carries exactly what such a binary needs (glibc, libgcc, CA
# certificates for Google's APIs, /etc/passwd with the nonroot user) and no shell or package
# manager.

ARG RUST_VERSION=1.89

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the target directory between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cloud-lb-controller --bin cloud-lb-controller \
 && install -D -m 0755 target/release/cloud-lb-controller /out/cloud-lb-controller

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="cloud-lb-controller" \
      org.opencontainers.image.description="Google Cloud HTTP(S) load balancers for Kubernetes Ingresses" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/cloud-lb-controller /usr/local/bin/cloud-lb-controller
# 65532 is distroless's "nonroot"; the Deployment asks for the same uid and runAsNonRoot.
USER 65532:65532
# /metrics and /healthz, /readyz (see `cloud-lb-controller run --help`).
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/cloud-lb-controller"]
CMD ["run"]
