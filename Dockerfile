FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin devsignal

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/devsignal /usr/local/bin/devsignal
ENV DATA_DIR=/data PORT=3000
EXPOSE 3000
CMD ["devsignal", "serve"]
