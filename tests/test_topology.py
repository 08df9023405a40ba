"""deploy/ as processes: Debian's nginx, configured from deploy/nginx/templates/ exactly as
the nginx container renders it, in front of three collector processes on one real
redis-server — the topology of deploy/docker-compose.yml, where no Docker engine runs — and, as
deploy/docker-compose.cluster.yml, on a real Redis Cluster.

Hits go in through nginx with assorted X-Forwarded-For headers; the counts that come
out must be exact, spread over the three collectors, and counted in the region of the
address nginx worked out (the load balancer's X-Forwarded-For, believed through
nginx's realip; a visitor's own header is not).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import httputil as http
from tests.conftest import RunningCollector, free_port

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "templates" / "collector.conf.template"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/install-system-deps.sh)")

# The main configuration the nginx image has, with every path in our own directory, so
# that nginx runs as an ordinary user: pid, logs and temp files in `dir`.
MAIN_CONF = """
daemon off;
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/collector.conf;
}}
"""


TEMPLATE_VARIABLE = re.compile(r"\$\{(\w+)\}")


def test_the_compose_file_sets_every_variable_of_the_nginx_template():
    names = set(TEMPLATE_VARIABLE.findall(TEMPLATE.read_text()))
    compose = (ROOT / "deploy" / "docker-compose.yml").read_text()
    assert names and all(re.search(rf"^\s+{name}:", compose, re.M) for name in names), names


def render(template: str, values: dict[str, str]) -> str:
    """What the nginx image's envsubst does: ${NAME} of the given names replaced, nginx's
    own $variables untouched."""
    return TEMPLATE_VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


@dataclass
class Nginx:
    proc: subprocess.Popen
    port: int
    dir: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_nginx(upstreams: list[int], real_ip_from: str = "127.0.0.1/32") -> Nginx:
    """nginx from the deploy template, as a non-root user (`nobody` when the tests run as root)."""
    directory = Path(tempfile.mkdtemp(prefix="edubeacon-nginx-"))  # not under pytest's 0700 tmp: nginx's user reads it
    try:
        return _start_nginx_in(directory, upstreams, real_ip_from)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _start_nginx_in(directory: Path, upstreams: list[int], real_ip_from: str) -> Nginx:
    port = free_port()
    values = {
        "NGINX_PORT": f"127.0.0.1:{port}",
        "NGINX_UPSTREAM_SERVERS": " ".join(f"server 127.0.0.1:{p} max_fails=3 fail_timeout=5s;" for p in upstreams),
        "NGINX_REAL_IP_FROM": real_ip_from,
        "NGINX_MAX_BODY": "16k",
    }
    rendered = render(TEMPLATE.read_text(), values)
    assert "${" not in rendered, "the template names a variable the deploy files do not set"
    (directory / "collector.conf").write_text(rendered)
    (directory / "nginx.conf").write_text(MAIN_CONF.format(dir=directory))
    user = None
    if os.geteuid() == 0:
        user = pwd.getpwnam("nobody")
        for path in (directory, *directory.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
    proc = subprocess.Popen(
        [NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-e", str(directory / "error.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        user=user.pw_uid if user else None, group=user.pw_gid if user else None,
    )
    nginx = Nginx(proc, port, directory)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{nginx.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            assert os.stat(f"/proc/{proc.pid}").st_uid != 0, "nginx must not run as root"
            return nginx
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"nginx did not listen:\n{nginx.log()}")


def stop_nginx(nginx: Nginx) -> None:
    if nginx.proc.poll() is None:
        nginx.proc.send_signal(signal.SIGTERM)
        try:
            nginx.proc.wait(10)
        except subprocess.TimeoutExpired:
            nginx.proc.kill()
            nginx.proc.wait()
    shutil.rmtree(nginx.dir, ignore_errors=True)


@pytest.fixture(params=["redis", "cluster"])
def nginx_in_front(request, collector_factory, tmp_path):
    """Three collectors, each with its own data directory (its own journal), behind nginx;
    on one redis-server (docker-compose.yml) or on a Redis Cluster of 3 masters and 3
    replicas (docker-compose.cluster.yml; tests/redis_cluster.py)."""
    redis = {}
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        cluster.wait_healthy()
        redis = {"redis_url": cluster.url}
    collectors = [collector_factory(data_dir=tmp_path / f"data-{i}", **redis) for i in range(3)]
    nginx = start_nginx([c.port for c in collectors])
    yield nginx, collectors, request.param
    stop_nginx(nginx)


def address_in(network) -> str:
    return network.cidr.split("/")[0].rsplit(".", 1)[0] + ".7"


def accepted_by(collector: RunningCollector) -> float:
    """Events this collector took, from its own /metrics (loopback: open)."""
    status, _, body = http.request("GET", collector.base_url + "/metrics")
    assert status == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == "edubeacon_events_accepted_total"
    )


def test_nginx_in_front_of_three_collectors_counts_exactly_in_the_forwarded_region(nginx_in_front, test_networks):
    nginx, collectors, backend = nginx_in_front
    hangzhou = next(n for n in test_networks if n.city == "330100")
    beijing = next(n for n in test_networks if n.province == "110000" and ":" not in n.cidr)
    app = f"topo-{backend}-{time.time_ns()}"  # the session's cluster is shared: an app of our own
    page = {"k": app, "t": "pageview", "u": "https://e.edu/", "sn": 1}

    def post_batch(i: int) -> int:
        # The load balancer's X-Forwarded-For, behind whatever the visitor sent itself
        # ("6.6.6.6" here): nginx takes the rightmost address the balancer added.
        forwarded = f"6.6.6.6, {address_in(hangzhou)}" if i % 2 else address_in(hangzhou)
        status, body = http.post(nginx.base_url + "/c", [page] * 5, {"User-Agent": UA, "X-Forwarded-For": forwarded})
        assert status == 204, body
        return 5

    def get_pixel(i: int) -> int:
        query = f"k={app}&t=pageview&u=https%3A%2F%2Fe.edu%2F&sn=1"
        status, _, _ = http.request("GET", f"{nginx.base_url}/c?{query}",
                                    headers={"User-Agent": UA, "X-Forwarded-For": address_in(beijing)})
        assert status == 204
        return 1

    def no_header(i: int) -> int:  # straight from the balancer's own address: no region
        status, _ = http.post(nginx.base_url + "/c", [page] * 2, {"User-Agent": UA})
        assert status == 204
        return 2

    with ThreadPoolExecutor(6) as pool:
        from_hangzhou = sum(pool.map(post_batch, range(40)))
        from_beijing = sum(pool.map(get_pixel, range(30)))
        unplaced = sum(pool.map(no_header, range(10)))
    sent = from_hangzhou + from_beijing + unplaced

    reader = collectors[0]
    reader.wait_for(lambda: reader.stats(app)["totals"]["pv"] == sent, timeout=30)
    time.sleep(1.0)  # a late duplicate would show now
    result = reader.stats(app, breakdown="region")
    assert result["totals"]["pv"] == sent
    provinces = {row["value"]: row["pv"] for row in result["breakdowns"]["region"]["province"]}
    assert provinces == {"CN/330000": from_hangzhou, "CN/110000": from_beijing, "(unknown)/(unknown)": unplaced}

    # Every collector took its share, and the shares add up (their own /metrics).
    shares = [accepted_by(c) for c in collectors]
    assert all(share > 0 for share in shares), shares
    assert sum(shares) == sent

    if backend == "cluster":
        assert all("redis: reached redis+cluster://" in c.log() for c in collectors)

    # The collectors' metrics are not for the internet.
    status, _, _ = http.request("GET", nginx.base_url + "/metrics")
    assert status == 404
    assert "[emerg]" not in nginx.log() and "[alert]" not in nginx.log()
