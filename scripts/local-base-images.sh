#!/usr/bin/env bash
# STAND-IN base images, for a machine whose network cannot reach Docker Hub.
#
# A normal `docker build .` pulls the official debian:bookworm-slim, node:20-bookworm-slim and
# rust:1.95.0-bookworm images; nothing here is needed then, and nothing here is used by CI or by a
# release. Where Docker Hub is unreachable but a Debian mirror is, this script builds look-alikes
# locally and tags them with exactly those names, so the real Dockerfile builds unchanged:
#
#   debian:bookworm-slim    debootstrap --variant=minbase bookworm, docs/man pages/locales left
#                           out as in the official slim image, apt lists removed.
#   node:20-bookworm-slim   that base + this host's Node 20 (`which node`) and its npm.
#   rust:1.95.0-bookworm    that base + ca-certificates, gcc, libc6-dev, make, pkg-config + this
#                           host's rustup and its 1.95.0 toolchain (no docs) in /usr/local/rustup
#                           and /usr/local/cargo, with RUSTUP_HOME, CARGO_HOME and PATH set as in
#                           the official image.
#
# Networks that intercept HTTPS with their own CA: pass it as EXTRA_CA=<pem file>. It is added to
# the node and rust stand-ins only (update-ca-certificates, and NODE_EXTRA_CA_CERTS for npm), so
# `npm ci` and `cargo` inside the build can reach the npm registry and crates.io. It is never put
# in the debian:bookworm-slim stand-in (the runtime base) nor in the Dockerfile.
#
#   sudo EXTRA_CA=/usr/local/share/ca-certificates/<the network's CA>.crt scripts/local-base-images.sh
#   docker build -t devsignal:candidate .     # with the legacy builder: BuildKit would try to pull
#                                             # the docker/dockerfile frontend from Docker Hub
#
# Remove the stand-ins afterwards so a later build pulls the real images:
#   docker image rm debian:bookworm-slim node:20-bookworm-slim rust:1.95.0-bookworm
#
# Needs root, debootstrap and a running Docker engine. MIRROR overrides the Debian mirror.
# Arguments pick which to (re)build: `debian`, `node`, `rust` (default: all three, in that order;
# node and rust are built FROM the debian one).
set -euo pipefail

only=${*:-debian node rust}
want() { case " $only " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

MIRROR=${MIRROR:-http://deb.debian.org/debian}
EXTRA_CA=${EXTRA_CA:-}
RUST_VERSION=1.95.0
SUITE=bookworm

[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "apt-get install debootstrap" >&2; exit 1; }
docker info >/dev/null
if [ -n "$EXTRA_CA" ]; then
  openssl x509 -in "$EXTRA_CA" -noout >/dev/null || { echo "EXTRA_CA=$EXTRA_CA is not a PEM certificate" >&2; exit 1; }
fi

work=$(mktemp -d /tmp/devsignal-base-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

# --- debian:bookworm-slim -------------------------------------------------------------------------
if want debian; then
echo "==> debian:$SUITE-slim from $MIRROR"
root=$work/rootfs
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
# What the official slim image leaves out, in place before any package is unpacked.
cat > "$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
# apt as configured in the official image: no package caches or downloaded .debs left in a layer
# (without this an `apt-get install` layer keeps ~80 MB of /var/cache/apt), no translations.
mkdir -p "$root/etc/apt/apt.conf.d"
cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' > "$root/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' > "$root/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR"
cat > "$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
# debootstrap unpacked its first packages before dpkg read the excludes: drop those files too.
find "${root:?}/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "${root:?}/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "${root:?}"/usr/share/{man,groff,info,locale,lintian,linda}/*
rm -rf "${root:?}"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "${root:?}"/var/log/* "$root"/tmp/* "$root"/root/.bash_history
: > "$root/etc/machine-id"
tar -C "$root" --numeric-owner -c . | docker import \
  -c 'CMD ["bash"]' \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -m "stand-in for debian:$SUITE-slim (debootstrap minbase from $MIRROR)" \
  - "debian:$SUITE-slim"
fi

ca_copy() { # the network's CA into a build context, or an empty placeholder
  mkdir -p "$1/ca"
  if [ -n "$EXTRA_CA" ]; then cp "$EXTRA_CA" "$1/ca/extra-ca.crt"; fi
}

# --- node:20-bookworm-slim ------------------------------------------------------------------------
if want node; then
node=$(command -v node)
case "$("$node" --version)" in v20.*) ;; *) echo "$node is not Node 20" >&2; exit 1 ;; esac
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
echo "==> node:20-$SUITE-slim with $node $("$node" --version) and npm from $npm_dir"
ctx=$work/node
mkdir -p "$ctx/lib/node_modules"
cp "$node" "$ctx/node"
cp -a "$npm_dir" "$ctx/lib/node_modules/npm"
ca_copy "$ctx"
cat > "$ctx/Dockerfile" <<EOF
FROM debian:$SUITE-slim
COPY node /usr/local/bin/node
COPY lib/node_modules/npm /usr/local/lib/node_modules/npm
COPY ca/ /usr/local/share/ca-certificates/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
    && node --version && npm --version
$( [ -n "$EXTRA_CA" ] && echo "ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/extra-ca.crt" || true )
ENV NODE_VERSION=$("$node" --version | tr -d v)
LABEL org.devsignal.stand-in="node:20-$SUITE-slim built by scripts/local-base-images.sh"
CMD ["node"]
EOF
docker build -t "node:20-$SUITE-slim" "$ctx"
fi

# --- rust:1.95.0-bookworm -------------------------------------------------------------------------
if want rust; then
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
toolchain=$rustup_home/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu
[ -x "$toolchain/bin/rustc" ] || toolchain=$rustup_home/toolchains/stable-x86_64-unknown-linux-gnu
"$toolchain/bin/rustc" --version | grep -q "^rustc $RUST_VERSION " \
  || { echo "no Rust $RUST_VERSION toolchain under $rustup_home/toolchains" >&2; exit 1; }
echo "==> rust:$RUST_VERSION-$SUITE with $("$toolchain/bin/rustc" --version) from $toolchain"
ctx=$work/rust
mkdir -p "$ctx/rustup/toolchains" "$ctx/cargo/bin"
# The toolchain without its HTML docs (~800 MB; the official image has none either).
tar -C "$(readlink -f "$toolchain")" --exclude=./share/doc -c . \
  | (mkdir -p "$ctx/rustup/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu" \
     && tar -C "$ctx/rustup/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu" -x)
cp "$(readlink -f "$(command -v rustup)")" "$ctx/cargo/bin/rustup"
for proxy in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt; do
  ln -s rustup "$ctx/cargo/bin/$proxy"
done
cat > "$ctx/rustup/settings.toml" <<EOF
version = "12"
default_toolchain = "$RUST_VERSION-x86_64-unknown-linux-gnu"
profile = "minimal"
auto_self_update = "disable"
EOF
ca_copy "$ctx"
cat > "$ctx/Dockerfile" <<EOF
FROM debian:$SUITE-slim
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev make pkg-config \\
    && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=$RUST_VERSION
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN rustc --version && cargo --version
LABEL org.devsignal.stand-in="rust:$RUST_VERSION-$SUITE built by scripts/local-base-images.sh"
EOF
docker build -t "rust:$RUST_VERSION-$SUITE" "$ctx"
fi

docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' \
  | grep -E "^(debian:$SUITE-slim|node:20-$SUITE-slim|rust:$RUST_VERSION-$SUITE)\b"
echo "stand-ins ready; remove them after the build (see the header)"
