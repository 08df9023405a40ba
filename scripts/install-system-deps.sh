#!/usr/bin/env bash
# Debian packages the test suite uses, installed only when missing:
# chromium (the browser tests drive it through Playwright), ffmpeg (test media), wrk
# (the benchmark's load generator, run in smoke mode by tests/test_bench.py),
# fonts-wqy-microhei (the CJK font the PDF reports embed) and poppler-utils (pdftoppm and
# pdffonts: tests/test_report.py renders the PDF and checks its font), Redis 7 with
# redis-cli (tests/test_cluster.py and tests/test_groups.py start Redis Clusters from them)
# and nginx (tests/test_topology.py runs deploy/'s nginx config in front of collectors;
# it lives in /usr/sbin, often not on an ordinary user's PATH), and valgrind
# (tests/test_bench_redis_instructions.py counts a tiny flush inside Redis under callgrind).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-system-deps: need root to install: ${missing[*]}" >&2; exit 1; fi
else SUDO=""; fi
echo "install-system-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
