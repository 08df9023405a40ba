"""The monthly report (docs/groups-and-reports.md) against the real app and a real Redis:
the seed's prefecture mix replayed gives the seed's table, every format renders, the PDF
shows Chinese (rasterised with poppler's pdftoppm), and the monthly job writes and
delivers each report once."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from conftest import FakeClock
from test_groups import register

from bench.traffic import REGION_MIX, SEED_TABLE
from collector.registry import webhook_sign
from collector.report.period import Period, month, parse_period
from collector.report.shares import largest_remainder
from collector.web.appkeys import CLOCK, FLUSHER, REDIS

SHANGHAI = ZoneInfo("Asia/Shanghai")
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.{n}.0 Safari/537.36"
SEED_HITS = 10_000  # the seed's shares have two decimals: 10,000 page views hold them exactly
EVENTS_PER_REQUEST = 50
# A network of the test MMDB (geo_data/build_test_mmdb.py) for each region of the mix:
# Zhejiang's prefectures have their own /16; the rest of the country and abroad share a few.
ZHEJIANG_NETWORK = {code: f"100.{64 + i}" for i, (code, *_rest) in enumerate(SEED_TABLE)}
ELSEWHERE = {"china": "198.18.0", "abroad": "198.18.10"}  # Beijing; Mountain View


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp()


def address(region, n: int) -> str:
    if region.key in ZHEJIANG_NETWORK:
        return f"{ZHEJIANG_NETWORK[region.key]}.{n // 250}.{n % 250 + 1}"
    return f"{ELSEWHERE[region.group]}.{n % 250 + 1}"


async def send(client, app: str, ip: str, n: int, serial: int) -> None:
    events = [{"k": app, "t": "pageview", "u": f"https://{app}.example.cn/p"}] * n
    answer = await client.post("/c", data=orjson.dumps(events), headers={"User-Agent": UA.format(n=serial), "X-Forwarded-For": ip})
    assert answer.status == 204, await answer.text()


async def replay_seed_mix(client, clock: FakeClock, app: str) -> None:
    """The seed's 10,000 page views by region (bench/traffic.py REGION_MIX), over two days
    of October 2026, more on the 10th (the peak day)."""
    serial = 0
    for region in REGION_MIX:
        left = round(SEED_HITS * region.share / 100)
        while left:
            n = min(left, EVENTS_PER_REQUEST)
            clock.now = at("2026-10-10T12:00:00") if serial % 3 else at("2026-10-11T09:00:00")
            await send(client, app, address(region, serial), n, serial)
            left -= n
            serial += 1


@pytest.fixture
def http_layer() -> str:
    return "fast path"


@pytest.fixture
async def seeded(collector_client):
    """A Zhejiang platform with the seed's October mix, and a small September before it."""
    clock = FakeClock(at("2026-09-15T10:00:00"))
    client = await collector_client(clock=clock, report_interval=0)
    await register(client.server.app[REDIS], "zjer", "330000", "浙江省教育技术中心")
    await send(client, "zjer", "100.64.9.9", 40, 1)  # September: 杭州 40, 金华 100, 宁波 10
    await send(client, "zjer", "100.70.9.9", 50, 2)
    await send(client, "zjer", "100.70.9.10", 50, 3)
    await send(client, "zjer", "100.65.9.9", 10, 4)
    await replay_seed_mix(client, clock, "zjer")
    clock.now = at("2026-11-02T10:00:00")
    await client.server.app[FLUSHER].flush()
    return client


async def get(client, query: str) -> tuple[int, str, bytes]:
    answer = await client.get("/api/report?" + query)
    return answer.status, answer.headers.get("Content-Type", "").split(";")[0], await answer.read()


async def test_the_seed_mix_gives_the_seed_table(seeded):
    status, _, body = await get(seeded, "app=zjer&month=2026-10")
    assert status == 200, body
    report = json.loads(body)
    regions = report["regions"]
    assert regions["level"] == "city" and regions["within"] == {"code": "330000", "name": "浙江省"}
    shares = {row["code"]: row["share_pct"] for row in regions["rows"]}
    for key, name, _pv_wan, share in SEED_TABLE:
        assert abs(shares[key.rsplit("/", 1)[1]] - share) <= 0.01, (name, shares)
    assert regions["other"]["name"] == "其他" and abs(regions["other"]["share_pct"] - 5.82) <= 0.01
    assert round(sum(shares.values()) + regions["other"]["share_pct"], 2) == 100.00
    assert [row["name"] for row in regions["rows"][:3]] == ["金华市", "杭州市", "绍兴市"]
    jinhua, hangzhou, ningbo = (next(r for r in regions["rows"] if r["code"] == c) for c in ("330700", "330100", "330200"))
    assert (jinhua["rank"], jinhua["previous_rank"], jinhua["rank_change"]) == (1, 1, 0)
    assert (ningbo["previous_rank"], ningbo["rank"], ningbo["rank_change"]) == (3, 6, -3)
    assert hangzhou["previous_pv"] == 40 and hangzhou["change_pct"] == round(100 * (1395 - 40) / 40, 2)

    access = report["access"]
    assert access["pv"] == SEED_HITS and access["previous_pv"] == 150 and access["uv_exact"]
    assert access["peak_day"]["date"] == "2026-10-10" and access["peak_day"]["pv"] > SEED_HITS / 2
    assert len(access["daily"]) == 31 and access["pages_per_visitor"] == round(SEED_HITS / access["uv"], 2)
    assert report["attribution"]["text"] == "IP Geolocation by DB-IP"
    assert report["previous_period"] == {"from": "2026-09-01", "to": "2026-09-30", "days": 30}


async def test_every_format(seeded):
    status, kind, body = await get(seeded, "app=zjer&month=2026-10&format=md")
    text = body.decode()
    assert status == 200 and kind == "text/markdown"
    assert "总访问量 1.0 万人次" in text and "| 其他 other |" in text and "IP Geolocation by DB-IP" in text
    status, kind, body = await get(seeded, "app=zjer&month=2026-10&format=html")
    assert status == 200 and kind == "text/html" and b"<svg" in body and b"https://db-ip.com" in body and "金华市".encode() in body
    status, kind, body = await get(seeded, "app=zjer&month=2026-10&format=csv")
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert status == 200 and kind == "text/csv" and ["330700", "金华市", "0.18", "17.53", "0.01", "+1653.00%", "+0"] in rows
    status, kind, body = await get(seeded, "group=province:33&from=2026-10-01&to=2026-10-15&format=json")
    report = json.loads(body)
    assert status == 200 and report["subject"]["id"] == "province:33" and report["access"]["pv"] == SEED_HITS
    assert not report["access"]["uv_exact"] and report["previous_period"]["to"] == "2026-09-30"
    for query, reason in (
        ("app=zjer&format=doc", "format must be"), ("app=zjer&month=2026-13", "month must be"),
        ("app=zjer&from=2026-10-01", "go together"), ("app=zjer&to=2026-10-01", "together"),
        ("app=zjer&from=0001-01-01&to=0001-12-31", "years 2000-2199"), ("app=zjer&month=9999-12", "years"),
        ("app=zjer&from=2026-01-01&to=2027-12-31", "at most 367 days"), ("app=zjer&from=2026-10-02&to=2026-10-01", "before"),
        ("app=zjer&month=2026-10&from=2026-10-01&to=2026-10-02", "not both"), ("group=set:nope", "no set"), ("", "app or group"),
        ("app=a&group=all", "app or group"),
    ):
        status, _, body = await get(seeded, query)
        assert status == 400 and reason in json.loads(body)["error"], (query, body)


def pgm(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, pixels) of a binary PGM (P5) as pdftoppm -gray writes it."""
    parts = data.split(maxsplit=4)
    assert parts[0] == b"P5"
    return int(parts[1]), int(parts[2]), parts[4][: int(parts[1]) * int(parts[2])]


needs_poppler = pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils: scripts/install-system-deps.sh")


@needs_poppler
async def test_the_pdf_embeds_the_cjk_font_and_shows_chinese(seeded, tmp_path):
    status, kind, body = await get(seeded, "app=zjer&month=2026-10&format=pdf")
    assert status == 200 and kind == "application/pdf" and body.startswith(b"%PDF"), body[:200]
    report_pdf = tmp_path / "report.pdf"
    report_pdf.write_bytes(body)
    fonts = subprocess.run(["pdffonts", str(report_pdf)], capture_output=True, text=True, check=True).stdout
    cjk = [line.split() for line in fonts.splitlines() if "WenQuanYi" in line]
    assert cjk and cjk[0][-5:-2] == ["yes", "yes", "yes"], fonts  # embedded, subset, with a Unicode map

    # Each Chinese character drawn in its own cell, rasterised: with the glyphs the cells
    # differ; without them (no font, a font without CJK) every cell is the same box.
    from reportlab.pdfgen import canvas

    from collector.report.pdf import _register

    face, chars = _register(""), "浙江金华杭州访问"
    probe = tmp_path / "probe.pdf"
    page = canvas.Canvas(str(probe), pagesize=(40 * len(chars), 40))
    page.setFont(face, 24)
    for i, ch in enumerate(chars):
        page.drawString(40 * i + 8, 10, ch)
    page.save()
    subprocess.run(["pdftoppm", "-gray", "-r", "72", str(probe), str(tmp_path / "probe")], check=True)
    width, height, pixels = pgm(next(tmp_path.glob("probe*.pgm")).read_bytes())
    cells = [bytes(pixels[y * width + 40 * i + x] for y in range(height) for x in range(40)) for i in range(len(chars))]
    assert all(min(cell) < 128 for cell in cells), "a character drew no ink"
    assert len(set(cells)) == len(chars), "characters render alike: boxes, not Chinese"

    subprocess.run(["pdftoppm", "-gray", "-r", "50", "-f", "1", "-l", "1", str(report_pdf), str(tmp_path / "page")], check=True)
    _, _, page_pixels = pgm(next(tmp_path.glob("page*.pgm")).read_bytes())
    assert sum(1 for p in page_pixels if p < 128) > 2000  # the report's first page has text and a chart


async def test_the_pdf_is_refused_without_its_font(collector_client, tmp_path):
    client = await collector_client(report_font=str(tmp_path / "nofont.ttc"), report_interval=0)
    status, _, body = await get(client, "app=zjer&month=2026-10&format=pdf")
    assert status == 503 and "fonts-wqy-microhei" in json.loads(body)["error"]
    assert (await get(client, "app=zjer&month=2026-10&format=md"))[0] == 200


async def test_the_monthly_job_writes_and_delivers_each_report_once(seeded, tmp_path):
    from collector.web.report_routes import build_report_job

    sent: list[tuple[dict, bytes]] = []

    async def send(url: str, headers: dict, body: bytes) -> str | None:
        sent.append((headers, body))
        return None

    app = seeded.server.app
    job = build_report_job(app, send)
    job.settings = job.settings.__class__(60, str(tmp_path), "", "https://receiver.example/hook", "s3cret")
    clock = app[CLOCK]
    clock.now = at("2026-11-01T23:00:00")  # the 1st: October's last events may still come
    await job.tick()
    assert not (tmp_path / "reports").exists() and not sent
    clock.now = at("2026-11-02T10:00:00")
    await job.tick()
    folder = tmp_path / "reports" / "2026-10"
    stems = {p.stem for p in folder.iterdir()}
    assert {"zjer", "province_33", "all", "org_浙江省教育技术中心"} <= stems
    assert {p.suffix for p in folder.glob("province_33.*")} == {".json", ".md", ".html", ".pdf", ".csv"}
    assert len(sent) == len(stems)
    headers, body = sent[0]
    stamp = headers[webhook_sign.TIMESTAMP_HEADER]
    assert webhook_sign.verify("s3cret", stamp, headers[webhook_sign.SIGNATURE_HEADER], body, int(stamp))
    delivered = json.loads(body)
    assert delivered["event"] == "report" and delivered["month"] == "2026-10"
    await job.tick()  # the month is done: nothing again
    assert len(sent) == len(stems)


def test_shares_add_up_to_100_by_largest_remainder():
    assert largest_remainder([1, 1, 1]) == [33.34, 33.33, 33.33]
    assert sum(largest_remainder([7, 13, 29, 51, 3])) == pytest.approx(100.0)
    assert largest_remainder([0, 0]) == [0.0, 0.0]


def test_periods():
    october = month("2026-10")
    assert october.calendar_month and october.previous() == month("2026-09")
    seed = parse_period(october.first, None, "2017-08-21", "2017-09-20")
    assert seed.days == 31 and not seed.calendar_month and seed.previous() == Period(seed.first.replace(month=7, day=21),
                                                                                     seed.first.replace(day=20))
    assert parse_period(month("2026-03").first, None, None, None) == month("2026-02")


async def test_the_command_line_makes_sets_and_reports(seeded, redis_url, tmp_path):
    from test_registry_cli import cli, ok

    ok("groups", "create", "east", "--platforms", "zjer,nbedu", "--title", "东部平台", redis_url=redis_url)
    listed = ok("groups", "list", redis_url=redis_url).stdout
    assert "set:east" in listed and "东部平台" in listed and "province:33" in listed
    done = ok("report", "--group", "set:east", "--month", "2026-10", "--format", "md", redis_url=redis_url)
    assert "# 东部平台 月度运行报告（2026年10月）" in done.stdout and "金华市" in done.stdout
    ok("report", "--app", "zjer", "--month", "2026-10", "--format", "pdf", "-o", str(tmp_path / "r.pdf"), redis_url=redis_url)
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    refused = cli("report", "--group", "province:3", redis_url=redis_url)
    assert refused.returncode == 1 and "is not one of" in refused.stderr
    ok("groups", "delete", "east", redis_url=redis_url)
    assert cli("groups", "delete", "east", redis_url=redis_url).returncode == 1
