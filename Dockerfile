# The dashboard: built with Node, then embedded into the binary by the Rust stage.
FROM node:20-bookworm-slim AS web
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY schema.graphql /src/schema.graphql
COPY frontend/ ./
RUN npm run build

FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=web /src/frontend/dist frontend/dist
# The dashboard is already built (above): embed frontend/dist as it is.
RUN DEVSIGNAL_SKIP_FRONTEND=1 cargo build --release --locked --bin devsignal

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/devsignal /usr/local/bin/devsignal
ENV DATA_DIR=/data PORT=3000 HOST=0.0.0.0
EXPOSE 3000
CMD ["devsignal", "serve"]
