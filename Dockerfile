# Patron in a container: `docker build -t patron .` then `docker run -p 8080:8080 patron`
# (or `docker compose up` for Patron with PostgreSQL, see compose.yaml).
#
# Stage 1 builds the widget and `patron` with its first-party plugins embedded
# (host/build.rs); stage 2 is a small Debian with the binary alone.

FROM rust:1.95-bookworm AS builder
RUN rustup target add wasm32-wasip2 wasm32-unknown-unknown
# The widget's build (web-widget/build.sh): node runs esbuild and binaryen from npm.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# wasm-bindgen-cli at the exact version of the wasm-bindgen crate in Cargo.lock.
COPY Cargo.lock ./
RUN version="$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')" \
    && cargo install wasm-bindgen-cli --version "$version"
COPY . .
RUN web-widget/build.sh \
    && cargo build --release --locked -p patron \
    && cp target/release/patron /usr/local/bin/patron

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/patron patron
COPY --from=builder /usr/local/bin/patron /usr/local/bin/patron
USER patron
WORKDIR /var/lib/patron
ENV PATRON_DATA_DIR=/var/lib/patron/data \
    PATRON_LISTEN=0.0.0.0:8080
VOLUME /var/lib/patron/data
EXPOSE 8080
ENTRYPOINT ["patron"]
CMD ["serve"]
