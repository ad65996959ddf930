# The shopstream image: built on Debian 12, run on its slim variant with the
# runtime libraries only, as a non-root user.
#
#   docker build -t shopstream .
#   docker run --rm -p 8050:8050 -v shopstream-data:/data shopstream   # serve
#   docker run --rm shopstream gen --count 10 --max                    # any command
#
# BASE and RUNTIME_BASE select the base images, so that the image can be
# built from a local Debian 12 base (--build-arg BASE=localhost/debian:bookworm
# --build-arg RUNTIME_BASE=localhost/debian:bookworm).
ARG BASE=debian:bookworm
ARG RUNTIME_BASE=debian:bookworm-slim

FROM ${BASE} AS build
# The packages follow the base image's Debian release (its security updates
# included), as on a developer's machine (scripts/deps): pinning their exact
# versions would break the build on every point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config python3 nodejs npm ca-certificates \
      libjansson-dev libsqlite3-dev zlib1g-dev libdeflate-dev libmicrohttpd-dev librdkafka-dev \
      libmongoc-dev libbson-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The page's npm packages at the versions of the lock file, which the build
# embeds into the binary (the browser test's devDependencies are left out).
COPY web/package.json web/package-lock.json web/
RUN npm ci --prefix web --omit=dev --no-audit --no-fund
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build --target shopstream \
 && strip build/shopstream \
 && build/shopstream version

FROM ${RUNTIME_BASE}
# The shared libraries that the binary links, and nothing else (see the
# build stage for why versions are not pinned).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libjansson4 libsqlite3-0 zlib1g libdeflate0 libmicrohttpd12 librdkafka1 libmongoc-1.0-0 libbson-1.0-0 libcurl4 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 shopstream \
 && useradd --system --uid 10001 --gid shopstream --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin shopstream \
 && mkdir /data \
 && chown shopstream:shopstream /data
COPY --from=build /src/build/shopstream /usr/local/bin/shopstream
USER 10001:10001
WORKDIR /data
ENV SHOPSTREAM_DATA=/data
VOLUME ["/data"]
EXPOSE 8050
# /healthz of `serve` (the default command) on its port, through bash's
# /dev/tcp: the image needs no HTTP client. Services that run another
# command set their own health check (docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${SHOPSTREAM_PORT:-8050} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["shopstream"]
CMD ["serve", "--bind", "0.0.0.0"]
