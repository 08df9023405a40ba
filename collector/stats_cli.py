"""`collector stats`: the read API (`GET /api/stats`) on the command line, over HTTP.

It asks a running collector (any replica: they all read the same Redis) and prints the
answer as a table for people (Chinese region names, aligned for wide characters), as
CSV for spreadsheets, or as the API's JSON unchanged.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from collector.api.stats import BREAKDOWNS, REGION_LEVELS

DEFAULT_URL = "http://127.0.0.1:8080"
# `--by` takes the API's breakdowns, with the region's three levels named on their own
# (the API answers all three under `region`); `prefecture` is the standard's word for city.
BY_ALIASES = {"region": "city", "prefecture": "city", "地市": "city", "省": "province"}
BY_CHOICES = tuple(REGION_LEVELS) + tuple(b for b in BREAKDOWNS if b != "region") + tuple(BY_ALIASES)
DIMENSION_NAMES = {
    "country": "国家", "province": "省份", "city": "地市", "device": "设备类型", "browser": "浏览器", "os": "操作系统",
    "page": "页面", "page_code": "页面编码", "referrer": "来源", "bot": "爬虫", "resource": "资源", "rtype": "资源类型",
    "subject": "学科", "stage": "学段", "source": "资源来源", "target": "点击目标", "track": "点击轨迹",
    "item": "轨迹位置", "channel": "分享渠道",
}
# (column title, field of a series row or of the totals, how to show it)
SUMMARY_COLUMNS = (
    ("时段 bucket", "bucket", str),
    ("PV 浏览量", "pv", str),
    ("UV 访客数", "uv", str),
    ("访问 visits", "visits", str),
    ("跳出率 bounce", "bounce_rate", lambda v: percent(v)),
    ("平均停留 avg s/visit", "avg_engaged_ms_per_visit", lambda v: "" if v is None else f"{v / 1000:.1f}"),
    ("百人浏览量 PV/100 UV", "pv_per_100_visitors", lambda v: "" if v is None else f"{v:.1f}"),
)


class StatsCommandError(Exception):
    """What went wrong, worded for the person at the terminal."""


def add_stats_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "stats",
        help="query /api/stats of a running collector: tables, CSV or JSON",
        description="Ask a running collector's read API (/api/stats) and print the figures. "
        "Example: collector stats --app demo --by city; collector stats --group province:33 --by city",
    )
    subject = parser.add_mutually_exclusive_group(required=True)
    subject.add_argument("--app", help="the platform's id (its app key with registry=open)")
    subject.add_argument("--group", help="a group of platforms (GET /api/groups): all, province:33, prefecture:3301, "
                                         "org:NAME, set:NAME; PV summed, UV counted once across them")
    parser.add_argument("--from", dest="start", default=None,
                        help="start: YYYY-MM-DD, YYYY-MM, ISO date-time or epoch seconds (default: now)")
    parser.add_argument("--to", dest="end", default=None, help="end, same forms (default: the start)")
    parser.add_argument("--granularity", default="day", choices=("minute", "hour", "day", "month"), help="bucket size (default day)")
    parser.add_argument("--by", default=None, choices=BY_CHOICES, metavar="DIMENSION",
                        help="break down by one of: " + ", ".join(BY_CHOICES) + " (region = city = prefecture)")
    parser.add_argument("--limit", type=int, default=None, help="rows of a deep-tag breakdown (API default 100)")
    parser.add_argument("--format", default="table", choices=("table", "json", "csv"), help="output (default table)")
    parser.add_argument("--url", default=os.environ.get("COLLECTOR_URL", DEFAULT_URL),
                        help=f"the collector's base URL (env COLLECTOR_URL, default {DEFAULT_URL})")
    parser.add_argument("--token", default=os.environ.get("COLLECTOR_API_TOKEN", ""),
                        help="Bearer token when the collector sets api_token (env COLLECTOR_API_TOKEN)")


def run_stats(args: argparse.Namespace) -> int:
    dimension = BY_ALIASES.get(args.by, args.by)
    try:
        answer = fetch_stats(args.url, args.token, query_of(args, dimension))
    except StatsCommandError as exc:
        print(f"collector stats: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        sys.stdout.write(json.dumps(answer, ensure_ascii=False, indent=2) + "\n")
    elif args.format == "csv":
        header, rows = table_of(answer, dimension)
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        if dimension in REGION_LEVELS and answer.get("attribution"):
            print(attribution_text(answer["attribution"]), file=sys.stderr)  # the CSV stays a table
    else:
        sys.stdout.write(render_report(answer, dimension))
    return 0


def query_of(args: argparse.Namespace, dimension: str | None) -> dict[str, str]:
    query = {"group": args.group} if args.group else {"app": args.app}
    query["granularity"] = args.granularity
    if args.start:
        query["from"] = args.start
    if args.end:
        query["to"] = args.end
    if dimension:
        query["breakdown"] = "region" if dimension in REGION_LEVELS else dimension
    if args.limit is not None:
        query["limit"] = str(args.limit)
    return query


def fetch_stats(base_url: str, token: str, query: dict[str, str]) -> dict:
    url = base_url.rstrip("/") + "/api/stats?" + urllib.parse.urlencode(query)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raise StatsCommandError(f"{err.code} from {url}: {_error_text(err.read())}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise StatsCommandError(f"cannot reach the collector at {base_url} ({reason}); is it running? (--url)") from None


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", body.decode(errors="replace")))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:300]


# ---- tables ---------------------------------------------------------------------------


def table_of(answer: dict, dimension: str | None) -> tuple[list[str], list[list[str]]]:
    """(header, rows as text): the breakdown's rows, or the series with a total row."""
    if not dimension:
        entries = answer["series"] + [{**answer["totals"], "bucket": "合计 total"}]
        header = [title for title, _, _ in SUMMARY_COLUMNS]
        return header, [[show(entry.get(field)) for _, field, show in SUMMARY_COLUMNS] for entry in entries]
    rows = _breakdown_rows(answer, dimension)
    if dimension in REGION_LEVELS:
        return _region_table(rows, dimension, answer["totals"]["pv"])
    return _generic_table(rows)


def _breakdown_rows(answer: dict, dimension: str) -> list[dict]:
    breakdowns = answer.get("breakdowns", {})
    if dimension in REGION_LEVELS:
        return breakdowns.get("region", {}).get(dimension, [])
    return breakdowns.get(dimension, [])


def _region_table(rows: list[dict], level: str, total_pv: int) -> tuple[list[str], list[list[str]]]:
    header = ["地区 region", "代码 code", "PV 浏览量", "UV 访客数", "占比 share"]
    return header, [
        [region_name(row, level), row["value"], str(row["pv"]), str(row.get("uv", "")),
         percent(row["pv"] / total_pv if total_pv else None)]
        for row in rows
    ]


def region_name(row: dict, level: str) -> str:
    """Chinese display name of a region row: 中国 / 浙江省 / 浙江省 杭州市; 未知 for unknown."""
    parts = {"country": ["country_name"], "province": ["province_name"], "city": ["province_name", "city_name"]}[level]
    names = [row.get(p) or "" for p in parts]
    if not names[-1]:
        names[-1] = "未知 (unknown)"
    if level == "province" and row.get("country") not in ("CN", "", None):
        names = [f"{row['country']} {names[0]}"]
    return " ".join(n for n in names if n)


def _generic_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Every scalar field of the rows, in the API's order (nested figures stay in --format json)."""
    fields: list[str] = []
    for row in rows:
        for name, value in row.items():
            if name not in fields and not isinstance(value, (dict, list)):
                fields.append(name)
    return fields, [["" if row.get(f) is None else _number(row.get(f)) for f in fields] for row in rows]


def render_report(answer: dict, dimension: str | None) -> str:
    totals = answer["totals"]
    span = answer["from"] if answer["from"] == answer["to"] else f"{answer['from']} … {answer['to']}"
    lines = [
        f"{subject_of(answer)}  {span}  ({answer['granularity']}, {answer['timezone']})",
        f"PV {totals['pv']}  UV {totals['uv']}  访问 visits {totals['visits']}  跳出率 bounce {percent(totals['bounce_rate']) or '-'}",
    ]
    if dimension:
        lines.append(f"按{DIMENSION_NAMES.get(dimension, dimension)} / by {dimension}:")
    header, rows = table_of(answer, dimension)
    lines.append(render_table(header, rows) if rows else "(无数据 no rows)")
    attribution = answer.get("attribution")
    if dimension in REGION_LEVELS and attribution:
        lines.append(attribution_text(attribution))
    return "\n".join(lines) + "\n"


def subject_of(answer: dict) -> str:
    """The app, or a group's name and id: 浙江省 (province:33)."""
    return f"{answer['group']['name']} ({answer['app']})" if "group" in answer else answer["app"]


def attribution_text(attribution: dict) -> str:
    return f"{attribution['text']} ({attribution['url']}, {attribution['license']})"


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned by display width (a Chinese character takes two cells); numbers
    right-aligned."""
    widths = [max(display_width(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    numeric = [all(_is_number(row[i]) for row in rows) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = []
        for cell, width, right in zip(cells, widths, numeric, strict=True):
            gap = " " * (width - display_width(cell))
            padded.append(gap + cell if right else cell + gap)
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _is_number(text: str) -> bool:
    return text == "" or text.rstrip("%").replace(".", "", 1).lstrip("-").isdigit()


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"
