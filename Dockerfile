# syntax=docker/dockerfile:1
# Harmony's image: the web UI (Node), the release binary that embeds it (Rust), then a small
# Debian runtime holding only the binary.
#
#   docker build -t harmony .
#   docker run -v harmony:/data -p 8080:8080 harmony        # a single node, data in the volume
#
# The same image runs every cluster role: set HARMONY_SERVER__ROLES and the [cluster] settings
# (see docker-compose.yml and deploy/helm/harmony). `docker run harmony config` prints every
# setting.

# ---- 1. the web UI (web/dist), as scripts/build-web builds it ----
FROM node:24-trixie-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
# `npm install`, not `npm ci`: the lock file carries only one platform's optional native
# packages, which `npm ci` refuses elsewhere (see scripts/build-web). Versions stay pinned by
# package.json.
RUN --mount=type=cache,target=/root/.npm \
    npm install --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run build --silent

# ---- 2. the release binary; harmony-api's build.rs embeds web/dist ----
FROM rust:1.95.0-trixie AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY config config
COPY migrations migrations
COPY --from=web /src/web/dist web/dist
# The registry and target/ are BuildKit caches, so a rebuild compiles only what changed; the
# binary is copied out of the cache into the image's layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p harmony-server \
    && cp target/release/harmony /usr/local/bin/harmony

# ---- 3. the runtime: glibc, libgcc and zlib are all the binary links (no TLS library) ----
FROM debian:trixie-slim
LABEL org.opencontainers.image.title="harmony" \
      org.opencontainers.image.description="Harmony: a self-hostable real-time chat server" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric user, so Kubernetes' runAsNonRoot can check it; /data is its own (0700, as
# the server makes it anyway).
RUN groupadd --system --gid 10001 harmony \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin harmony \
    && mkdir /data \
    && chown 10001:10001 /data \
    && chmod 0700 /data
COPY --from=build /usr/local/bin/harmony /usr/local/bin/harmony
USER 10001:10001
ENV HARMONY_LISTEN=0.0.0.0:8080 \
    HARMONY_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
# The slim image has no curl: bash's /dev/tcp asks /healthz on the port HARMONY_LISTEN names.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HARMONY_LISTEN##*:} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/harmony"]
