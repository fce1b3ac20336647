# syntax=docker/dockerfile:1
# DevSignal's image: the dashboard built with Node, the server built with Rust (dependencies in a
# layer of their own, so a code change rebuilds in minutes), run as an unprivileged user with
# DATA_DIR a volume. RUNBOOK.md ("The image") has its size and how to verify it.

# --- The dashboard --------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS web
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY schema.graphql /src/schema.graphql
COPY frontend/ ./
RUN npm run build

# --- The server -----------------------------------------------------------------------------------
FROM rust:1.95.0-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The dependency recipe: changes only when a manifest or Cargo.lock does.
FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
# The build's environment (jemalloc's built-in settings): the same for the dependencies cooked
# here as for the final build, so the final build reuses them.
COPY .cargo/ .cargo/
RUN DEVSIGNAL_SKIP_FRONTEND=1 cargo chef cook --release --locked --recipe-path recipe.json --package devsignal-server --bin devsignal
COPY . .
COPY --from=web /src/frontend/dist frontend/dist
# The dashboard is already built (above): embed frontend/dist as it is. The same package, binary
# and profile as `cargo chef cook`, so only DevSignal's own crates compile here.
RUN DEVSIGNAL_SKIP_FRONTEND=1 cargo build --release --locked --package devsignal-server --bin devsignal

# --- The runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 devsignal \
    && useradd --system --uid 10001 --gid devsignal --home-dir /data --shell /usr/sbin/nologin devsignal \
    && mkdir -p /data \
    && chown devsignal:devsignal /data
COPY --from=build /src/target/release/devsignal /usr/local/bin/devsignal
ENV DATA_DIR=/data PORT=3000 HOST=0.0.0.0 WORKER_HEALTH_PORT=3001
VOLUME ["/data"]
USER devsignal
WORKDIR /data
EXPOSE 3000 3001
# The health of the process this container runs: a worker (`devsignal worker`, as PID 1 or under
# --init) answers on WORKER_HEALTH_PORT, a server on PORT. Never the other port as a fallback: with
# --network host that would be another container's answer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD port="$PORT"; tr '\0' ' ' </proc/1/cmdline | grep -qE '(^| )worker( |$)' && port="$WORKER_HEALTH_PORT"; curl -fsS "http://127.0.0.1:$port/health" || exit 1
CMD ["devsignal", "serve"]
