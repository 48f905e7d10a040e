# syntax=docker/dockerfile:1
#
# herald in a container: a release build on Debian bookworm, run by a non-root user on a
# distroless runtime (glibc and CA certificates, no shell, no package manager).
#
#   docker build -t herald .
#   docker run -d --name herald -p 8080:8080 -v herald:/var/lib/herald --stop-timeout 15 herald
#   docker exec herald herald token create --channel example --email you@example.com --role admin
#
# The SQLite database lives in the volume at /var/lib/herald. For PostgreSQL instead, pass
# -e DATABASE_URL=postgres://USER:PASSWORD@HOST/DB. Every other setting is an environment variable
# too (see the README). herald waits up to HERALD_SHUTDOWN_GRACE_MS (10 s) for attempts in flight
# on SIGTERM, hence a stop timeout above Docker's default of 10 s.
#
# SQLite's connection threads run raised only where herald may raise its priority. Docker gives
# --cap-add SYS_NICE to root only (moby/moby#50083), so for this non-root user raise RLIMIT_NICE
# instead: --ulimit nice=30 lets it go down to nice -10.
#
# Untested here: the machine this was written on had no Docker daemon, so neither the build nor
# the --ulimit advice has been run. The build needs crates.io; it is a fat-LTO release build,
# which takes a while on a small machine.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin herald \
    && install -D target/release/herald /out/usr/local/bin/herald \
    && mkdir -p /out/var/lib/herald

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="herald" \
      org.opencontainers.image.description="Self-hosted delivery of signed webhooks" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=builder /out/usr/local/bin/herald /usr/local/bin/herald
# Owned by the image's user (nonroot, 65532): a new volume starts as a copy of this directory.
COPY --from=builder --chown=65532:65532 /out/var/lib/herald /var/lib/herald
USER 65532:65532
ENV HERALD_LISTEN=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/herald/herald.db
VOLUME /var/lib/herald
EXPOSE 8080
ENTRYPOINT ["herald"]
CMD ["serve"]
