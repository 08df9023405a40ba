"""The report as PDF, drawn with reportlab, embedding a CJK font from a package.

Why reportlab rather than a headless Chromium printing the HTML: it is a pip dependency
of the collector (no browser to install on every replica, no process to start per
report), its output is the same on every machine, and it embeds exactly the font file
given (a subset of its glyphs), so the PDF prints anywhere. The font is Debian's
fonts-wqy-microhei (/usr/share/fonts/truetype/wqy/wqy-microhei.ttc, the `report_font`
setting). Without it the PDF is refused, never drawn with boxes in place of Chinese.
"""

from __future__ import annotations

import io
from hashlib import sha256
from pathlib import Path

from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from collector.report import render
from collector.report.render import FontMissing

__all__ = ["FontMissing", "pdf"]

FONT_NAME = "ReportCJK"
DEFAULT_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def _register(font: str) -> str:
    path = Path(font or DEFAULT_FONT)
    if not path.is_file():
        raise FontMissing(f"the report's CJK font {path} is missing: install the Debian package fonts-wqy-microhei "
                          "(apt-get install fonts-wqy-microhei) or set report_font (COLLECTOR_REPORT_FONT) to a TTF/TTC file")
    name = f"{FONT_NAME}-{sha256(str(path).encode()).hexdigest()[:12]}"  # one registration per file
    if name not in pdfmetrics.getRegisteredFontNames():
        # A .ttc holds several faces: the first is the regular one (WenQuanYi Micro Hei).
        options = {"subfontIndex": 0} if path.suffix.lower() == ".ttc" else {}
        pdfmetrics.registerFont(TTFont(name, str(path), **options))
    return name


def pdf(report: dict, font: str = "") -> bytes:
    face = _register(font)
    styles = {
        "title": ParagraphStyle("title", fontName=face, fontSize=16, leading=22, spaceAfter=6),
        "h2": ParagraphStyle("h2", fontName=face, fontSize=13, leading=18, spaceBefore=8, spaceAfter=4),
        "h3": ParagraphStyle("h3", fontName=face, fontSize=11, leading=15, spaceBefore=6, spaceAfter=3),
        "body": ParagraphStyle("body", fontName=face, fontSize=9.5, leading=14),
        "small": ParagraphStyle("small", fontName=face, fontSize=8, leading=11, textColor=colors.grey),
    }
    para = lambda text, style="body": Paragraph(_escape(text), styles[style])  # noqa: E731
    story = [para(report["title"], "title"),
             para(f"对象 subject: {report['subject']['name']} ({report['subject']['id']})", "small"),
             para("一、访问指标 Access", "h2"), para(render.headline(report)), para(render.headline_en(report)),
             para(render.change_words(report))]
    if render.uv_note(report):
        story.append(para(render.uv_note(report), "small"))
    story += [para("每日访问量 Daily PV", "h3"), _chart(report["access"]["daily"], face),
              para(render.region_title(report), "h3"), _table(list(render.REGION_HEADER), render.region_rows(report), face),
              para("二、资源指标 Resources (table 4)", "h2"),
              _table(["指标 indicator", "数值 value"], render.resource_rows(report), face)]
    for dim, rows in report["resources"]["by_dimension"].items():
        if rows:
            story += [para(render.DIMENSION_LABELS[dim], "h3"), _table(*render.dimension_table(rows), face)]
    story += [Spacer(1, 4 * mm), para(render.attribution_line(report), "small"),
              para(f"生成于 generated {report['generated_at']} ({report['timezone']})", "small")]
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=report["title"], author="edu-beacon",
                            leftMargin=16 * mm, rightMargin=16 * mm, topMargin=14 * mm, bottomMargin=14 * mm)
    doc.build(story)
    return out.getvalue()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table(header: list[str], rows: list[list[str]], face: str) -> Table:
    table = Table([header, *rows], repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), face), ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
        ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
    ]))
    return table


def _chart(daily: list[dict], face: str, width: float = 170 * mm, height: float = 55 * mm) -> Drawing:
    """Daily PV as bars, the peak in red; the same chart as render.daily_svg."""
    drawing = Drawing(width, height)
    left, bottom, top_pad = 14 * mm, 8 * mm, 4 * mm
    top = max((d["pv"] for d in daily), default=0) or 1
    step = (width - left) / max(len(daily), 1)
    plot_h = height - bottom - top_pad
    peak = max(range(len(daily)), key=lambda i: daily[i]["pv"], default=None)
    drawing.add(Line(left, bottom, width, bottom, strokeColor=colors.grey))
    drawing.add(String(left - 2, height - top_pad - 3, str(top), fontName=face, fontSize=7, textAnchor="end"))
    drawing.add(String(left - 2, bottom, "0", fontName=face, fontSize=7, textAnchor="end"))
    for i, d in enumerate(daily):
        h = plot_h * d["pv"] / top
        x = left + i * step + step * 0.15
        fill = colors.HexColor("#c0392b") if i == peak and d["pv"] else colors.HexColor("#2e6da4")
        drawing.add(Rect(x, bottom, step * 0.7, h, fillColor=fill, strokeColor=None))
        if i in (0, len(daily) - 1, peak):
            drawing.add(String(x + step * 0.35, 1 * mm, d["date"][5:], fontName=face, fontSize=6.5, textAnchor="middle"))
    return drawing
