#!/usr/bin/env bash
# Install what the tests need (system packages when missing, Python and npm deps, the
# DB-IP database), check lint and types (ruff, mypy: pyproject.toml), and run
# the whole suite: unit, real Redis, real collector processes, real headless Chromium.
# Extra arguments go to pytest, e.g. ./test.sh -m "not browser" -x
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/install-system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[test]"
# Lint and types first: a violation fails the run before the slow parts start.
.venv/bin/ruff check .
.venv/bin/mypy
bash geo_data/fetch_dbip.sh  # the real database: the bench smoke test and its IP pool check use it
# (Not cut with geo_data/derive_dbip.py here: ~3 min; the tests answer the same on either file,
# and tests/test_geo_derive.py tests the cut.)
(cd beacon_js && npm ci --no-audit --no-fund --loglevel=error && npm test --silent)
# Two pytest processes, whole files each (--dist loadfile: a module's fixtures and its order
# stay together): most tests wait on real processes (Redis, collectors, Chromium), so two
# take about 10 minutes where one took 17-18 on a 2-core machine. TEST_WORKERS=0 runs one.
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
