# syntax=docker/dockerfile:1
# The roster operator image: the `roster` binary on distroless (glibc, CA certificates,
# no shell, no package manager), running as the non-root user 65532 that the chart's
# securityContext names, with the CycloneDX SBOM of the binary's dependency tree inside.
#
#   docker build -t ghcr.io/roster-dev/roster:0.1.0 .
#
# The SBOM is made by the same script CI runs (.ci/sbom, cargo-cyclonedx pinned there)
# and lands at /usr/share/doc/roster/sbom/ in the image; docs/security.md, "Supply chain".

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p roster --bin roster \
 && bash .ci/sbom \
 && mkdir -p /out/sbom \
 && cp target/release/roster /out/roster \
 && cp target/sbom/* /out/sbom/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/roster /usr/local/bin/roster
COPY --from=build /out/sbom/ /usr/share/doc/roster/sbom/
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/roster"]
CMD ["run"]
