"""The report as Markdown, HTML (with an SVG chart of daily PV), CSV and JSON.

All formats show the same figures from build.py; Chinese first, English after. The PDF
is drawn by pdf.py from the same dict.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from html import escape
from typing import Any

import orjson


class FontMissing(RuntimeError):
    """The CJK font file is not there: install fonts-wqy-microhei, or set report_font.
    (Defined here, not in pdf.py, so that catching it does not import reportlab: ~6 MB
    in every worker that never draws a PDF.)"""


SPARK = "▁▂▃▄▅▆▇█"
FORMATS = ("json", "md", "html", "pdf", "csv")
MEDIA_TYPES = {"json": "application/json", "md": "text/markdown", "html": "text/html", "csv": "text/csv", "pdf": "application/pdf"}
RESOURCE_LABELS = (  # (field of report["resources"], label, how to show it)
    ("catalogue_resources", "资源总数 resources in the catalogue", "int"),
    ("resources_viewed", "被浏览资源数 resources viewed", "int"),
    ("views", "资源浏览次数 resource views", "int"),
    ("avg_views_per_resource", "资源平均浏览量 average views per resource", "float"),
    ("watch_hours", "观看时长（小时） watch time, hours", "float"),
    ("read_hours", "阅读时长（小时） reading time, hours", "float"),
    ("completion_avg", "平均观看完成度 average completion", "pct"),
    ("completed_rate", "看完比例 sessions completed", "pct"),
    ("ratings", "评价次数 ratings", "int"),
    ("rating_avg", "平均评分 average rating (1-5)", "float"),
    ("likes", "点赞次数 likes", "int"),
    ("shares", "转发次数 shares", "int"),
    ("favorites", "收藏次数 favorites", "int"),
)
DIMENSION_LABELS = {"rtype": "资源类型 type", "subject": "学科 subject", "stage": "学段 stage", "source": "资源来源 source"}
REGION_HEADER = ("排名 rank", "地区 region", "PV (万次)", "占比 share (%)", "上期 PV (万次) previous", "环比 change (%)",
                 "名次变化 rank change")


def show(value: Any, kind: str = "float") -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "int":
        return str(value)
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def signed(value: float | int | None, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}{suffix}" if isinstance(value, float) else f"{value:+d}{suffix}"


def headline(report: dict) -> str:
    """The seed's first sentence: 总访问量 … 万人次，独立访客 … 万人，人均浏览页数 … 页/人，最高日访问量 … (date)."""
    a, p = report["access"], report["period"]
    peak = f"，最高日访问量 {a['peak_day']['pv']}（{a['peak_day']['date']}）" if a["peak_day"] else ""
    ppv = f"{a['pages_per_visitor']:.1f}" if a["pages_per_visitor"] is not None else "-"
    return (f"{p['from']} 至 {p['to']}，总访问量 {a['pv'] / 10_000:.1f} 万人次，独立访客 {a['uv'] / 10_000:.1f} 万人，"
            f"人均浏览页数 {ppv} 页/人{peak}。")


def headline_en(report: dict) -> str:
    a, p = report["access"], report["period"]
    peak = f"; peak day {a['peak_day']['date']} with {a['peak_day']['pv']} PV" if a["peak_day"] else ""
    ppv = f"{a['pages_per_visitor']:.1f}" if a["pages_per_visitor"] is not None else "-"
    return (f"{p['from']} to {p['to']}: {a['pv']} page views ({a['pv_wan']:.2f} × 10^4), {a['uv']} unique visitors, "
            f"{ppv} pages per visitor{peak}.")


def uv_note(report: dict) -> str:
    if report["access"].get("uv_exact", True):
        return ""
    return ("注：非日历月的独立访客为各日去重人数的并集，多日来访的访客每天计一次（访客标识按日加盐）。"
            " Note: outside a calendar month, UV is the union of the days; a visitor of several days counts once per day "
            "(visitor keys are salted per day).")


def change_words(report: dict) -> str:
    a = report["access"]
    pv, uv = a.get("pv_change_pct"), a.get("uv_change_pct")
    return f"与上期相比 vs the previous period: PV {signed(pv, '%')}, UV {signed(uv, '%')}."


def region_rows(report: dict) -> list[list[str]]:
    regions = report["regions"]
    rows = [[show(r["rank"], "int"), r["name"], f"{r['pv_wan']:.2f}", f"{r['share_pct']:.2f}", f"{r['previous_pv'] / 10_000:.2f}",
             signed(r["change_pct"], "%"), signed(r["rank_change"])] for r in regions["rows"]]
    other = regions["other"]
    rows.append(["", f"{other['name']} other", f"{other['pv_wan']:.2f}", f"{other['share_pct']:.2f}", "", "", ""])
    return rows


def region_title(report: dict) -> str:
    regions, p = report["regions"], report["period"]
    where = f"{regions['within']['name']}各地市" if regions["within"] else "各省"
    return f"表 {where}访问量（{p['from']} 至 {p['to']}） PV by {'prefecture' if regions['within'] else 'province'}"


def sparkline(values: list[int]) -> str:
    top = max(values, default=0)
    if not top:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, v * len(SPARK) // (top + 1))] for v in values)


def attribution_line(report: dict) -> str:
    a = report["attribution"]
    return f"地区数据 Region data: {a['text']} ({a['url']}, {a['license']})"


# ---- Markdown ---------------------------------------------------------------------------


def markdown(report: dict) -> str:
    daily = report["access"]["daily"]
    lines = [f"# {report['title']}", "", f"对象 subject: {report['subject']['name']} (`{report['subject']['id']}`), "
             f"平台 platforms: {', '.join(report['subject']['platforms']) or '-'}", "",
             "## 一、访问指标 Access", "", headline(report), "", headline_en(report), "", change_words(report), ""]
    if uv_note(report):
        lines += [uv_note(report), ""]
    lines += ["### 每日访问量 Daily PV", "", f"`{sparkline([d['pv'] for d in daily])}`", "",
              _md_table(["日期 date", "PV", "UV"], [[d["date"], str(d["pv"]), str(d["uv"])] for d in daily]), "",
              f"### {region_title(report)}", "", _md_table(list(REGION_HEADER), region_rows(report)), "",
              "## 二、资源指标 Resources (table 4)", "",
              _md_table(["指标 indicator", "数值 value"], resource_rows(report)), ""]
    for dim, rows in report["resources"]["by_dimension"].items():
        if rows:
            lines += [f"#### {DIMENSION_LABELS[dim]}", "", _md_table(*dimension_table(rows)), ""]
    lines += ["---", "", attribution_line(report), f"生成于 generated {report['generated_at']} ({report['timezone']})", ""]
    return "\n".join(lines)


def resource_rows(report: dict) -> list[list[str]]:
    resources = report["resources"]
    return [[label, show(resources.get(field), kind)] for field, label, kind in RESOURCE_LABELS]


def dimension_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["值 value", "浏览 views", "访客 viewers", "被浏览资源 viewed", "资源数 catalogue", "平均浏览量 avg views"]
    fields = ("value", "views", "viewers", "resources_viewed", "catalogue_resources", "avg_views_per_resource")
    return header, [[show(row.get(f)) for f in fields] for row in rows]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


# ---- HTML -------------------------------------------------------------------------------


def daily_svg(daily: list[dict], width: int = 720, height: int = 220) -> str:
    """Bars of daily PV with the peak marked; text in the page's font (CJK capable)."""
    pad_left, pad_bottom, pad_top = 56, 28, 16
    top = max((d["pv"] for d in daily), default=0) or 1
    step = (width - pad_left - 8) / max(len(daily), 1)
    plot_h = height - pad_bottom - pad_top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="每日访问量 daily PV">',
             f'<line x1="{pad_left}" y1="{height - pad_bottom}" x2="{width - 4}" y2="{height - pad_bottom}" stroke="#555"/>',
             f'<text x="{pad_left - 6}" y="{pad_top + 4}" text-anchor="end" font-size="11">{top}</text>',
             f'<text x="{pad_left - 6}" y="{height - pad_bottom}" text-anchor="end" font-size="11">0</text>']
    peak = max(range(len(daily)), key=lambda i: daily[i]["pv"], default=None)
    for i, d in enumerate(daily):
        h = plot_h * d["pv"] / top
        x = pad_left + i * step + step * 0.15
        fill = "#c0392b" if i == peak and d["pv"] else "#2e6da4"
        parts.append(f'<rect x="{x:.1f}" y="{height - pad_bottom - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="{fill}">'
                     f'<title>{escape(d["date"])}: {d["pv"]}</title></rect>')
        if i == 0 or i == len(daily) - 1 or i == peak:
            parts.append(f'<text x="{x + step * 0.35:.1f}" y="{height - 8}" text-anchor="middle" font-size="10">'
                         f'{escape(d["date"][5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html(report: dict) -> str:
    e = escape
    tables = [f"<h3>{e(region_title(report))}</h3>", _html_table(list(REGION_HEADER), region_rows(report)),
              "<h2>二、资源指标 Resources (table 4)</h2>", _html_table(["指标 indicator", "数值 value"], resource_rows(report))]
    for dim, rows in report["resources"]["by_dimension"].items():
        if rows:
            tables += [f"<h4>{e(DIMENSION_LABELS[dim])}</h4>", _html_table(*dimension_table(rows))]
    note = f"<p class=note>{e(uv_note(report))}</p>" if uv_note(report) else ""
    a = report["attribution"]
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{e(report['title'])}</title>
<style>
body {{ font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
       max-width: 780px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }} th, td {{ border: 1px solid #bbb; padding: 3px 8px; }}
td {{ text-align: right; }} td:nth-child(2), td:first-child {{ text-align: left; }} .note, footer {{ color: #555; font-size: 90%; }}
</style></head><body>
<h1>{e(report['title'])}</h1>
<p>对象 subject: {e(report['subject']['name'])} (<code>{e(report['subject']['id'])}</code>)</p>
<h2>一、访问指标 Access</h2>
<p>{e(headline(report))}</p><p>{e(headline_en(report))}</p><p>{e(change_words(report))}</p>{note}
<h3>每日访问量 Daily PV</h3>
{daily_svg(report['access']['daily'])}
{''.join(tables)}
<footer><p>地区数据 Region data: <a href="{e(a['url'])}">{e(a['text'])}</a> ({e(a['license'])})</p>
<p>生成于 generated {e(report['generated_at'])} ({e(report['timezone'])})</p></footer>
</body></html>
"""


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---- CSV and JSON -----------------------------------------------------------------------


def csv_text(report: dict) -> str:
    """Sections one after the other, each under a title row: the figures, the daily PV, the regions."""
    out = io.StringIO()
    w = csv.writer(out)
    a = report["access"]
    w.writerow([report["title"]])
    w.writerow(["指标 figure", "值 value"])
    for name, value in (("PV", a["pv"]), ("UV", a["uv"]), ("人均浏览页数 pages per visitor", a["pages_per_visitor"]),
                        ("最高日 peak day", a["peak_day"]["date"] if a["peak_day"] else ""),
                        ("最高日访问量 peak day PV", a["peak_day"]["pv"] if a["peak_day"] else "")):
        w.writerow([name, "" if value is None else value])
    w.writerow([])
    w.writerow(["日期 date", "PV", "UV"])
    w.writerows([d["date"], d["pv"], d["uv"]] for d in a["daily"])
    w.writerow([])
    w.writerow(["代码 code", *REGION_HEADER[1:]])
    for region, row in zip([*report["regions"]["rows"], report["regions"]["other"]], region_rows(report), strict=True):
        w.writerow([region["code"], *row[1:]])
    w.writerow([])
    w.writerow([attribution_line(report)])
    return out.getvalue()


def json_bytes(report: dict) -> bytes:
    return orjson.dumps(report)


def render(report: dict, fmt: str, font: str = "") -> bytes:
    """The report in `fmt` (FORMATS); `font` is the CJK font file the PDF embeds."""
    if fmt == "pdf":
        from collector.report.pdf import pdf  # reportlab is imported only for PDFs

        return pdf(report, font)
    text: dict[str, Callable[[dict], str]] = {"md": markdown, "html": html, "csv": csv_text}
    return json_bytes(report) if fmt == "json" else text[fmt](report).encode()
