# syntax=docker/dockerfile:1
# The roster operator image for machines with a container engine: the `roster` binary,
# linked statically (musl), on distroless `static` (CA certificates, a passwd entry, no
# shell, no package manager, no libc), running as the non-root user 65532 that the
# chart's securityContext names, with the CycloneDX SBOM of the binary's dependency
# tree inside.
#
#   docker build -t ghcr.io/roster-dev/roster:0.1.0 .
#
# Releases do not use this file: .github/workflows/release.yml publishes the image that
# `.ci/image` builds without an engine or a base image (the same static binary, CA
# certificates, SBOM and user on an empty base), which CI starts and probes (the
# integration test `image::`; docs/operations.md). Keep the two alike.
#
# The SBOM is made by the same script CI runs (.ci/sbom, cargo-cyclonedx pinned there)
# and lands at /usr/share/doc/roster/sbom/ in the image; docs/security.md, "Supply chain".

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
RUN apt-get update -q && apt-get install -y -q --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p roster --bin roster --target x86_64-unknown-linux-musl \
 && bash .ci/sbom \
 && mkdir -p /out/sbom \
 && cp target/x86_64-unknown-linux-musl/release/roster /out/roster \
 && cp target/sbom/* /out/sbom/

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/roster /usr/local/bin/roster
COPY --from=build /out/sbom/ /usr/share/doc/roster/sbom/
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/roster"]
CMD ["run"]
