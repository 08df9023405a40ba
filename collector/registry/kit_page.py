"""The developer page of a kit, in Markdown and HTML: Chinese first, then English.

Every value from the record (names, domains, the contact) is escaped in HTML; the
snippets are shown as text, never run on this page.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from collector.registry.kit import Kit
from collector.registry.model import ENVIRONMENTS, PLATFORM_TYPES, STATE_NAMES


def _facts(kit: Kit) -> list[tuple[str, str, str]]:
    """(中文, English, value) rows describing the platform."""
    p = kit.platform
    scope = p.scope
    tags = " + ".join(t for t, on in (("基础埋码 basic", scope.basic), ("深度埋码 deep", scope.deep)) if on)
    return [
        ("平台编号", "Platform id", p.id),
        ("平台名称", "Name", p.name),
        ("平台类型", "Type", f"{PLATFORM_TYPES[p.type]} {p.type}"),
        ("所属单位", "Organisation", f"{p.org} ({p.region})"),
        ("状态", "State", f"{STATE_NAMES[p.state]} {p.state}"),
        ("部署环境", "Environment", f"{ENVIRONMENTS[p.environment]} {p.environment}"),
        ("appKey", "App key", p.app_key),
        ("采集服务", "Collector", kit.base_url),
        ("登记域名", "Registered domains", ", ".join(p.domains)),
        ("采集范围", "Collection scope", f"{tags}; {', '.join(scope.events)}"
                                        + (f"; {', '.join(scope.dimensions)}" if scope.dimensions else "")),
    ]


def render_markdown(kit: Kit) -> str:
    p = kit.platform
    lines = [f"# {p.name} — 接入开发文档 / Integration kit", ""]
    lines += ["| 项目 | Item | 值 / value |", "|---|---|---|"]
    lines += [f"| {zh} | {en} | `{value}` |" for zh, en, value in _facts(kit)]
    lines += ["", "## 一、埋码 / 1. The snippet", "",
              "把下面任意一段代码放进每个页面的 `<head>`。 / Paste one of these into the `<head>` of every page.", ""]
    for snippet in kit.snippets:
        lines += [f"### {snippet.title_zh} / {snippet.title_en}", "", "```html", snippet.code, "```", ""]
    if kit.deep:
        lines += ["## 二、深度埋码 / 2. Deep tag", "",
                  f"加载 `{kit.script}`（上面的代码已是）。以下是本平台申报的采集项。 / "
                  f"Load `{kit.script}` (the snippets above do). These are the items this platform declared.", ""]
        for snippet in kit.deep:
            lines += [f"### {snippet.title_zh} / {snippet.title_en}", "", "```html", snippet.code, "```", ""]
    lines += ["## 接口 / Endpoints", "", "| 地址 / URL | 用途 | what |", "|---|---|---|"]
    lines += [f"| `{url}` | {zh} | {en} |" for url, zh, en in kit.endpoints]
    lines += ["", "## 验证清单 / Verification checklist", ""]
    lines += [f"{i}. {zh}  \n   {en}" for i, (zh, en) in enumerate(kit.checklist, 1)]
    lines += ["", f"_生成时间 / generated {_now()}_", ""]
    return "\n".join(lines)


def render_html(kit: Kit) -> str:
    esc = html.escape
    p = kit.platform
    facts = "\n".join(f"<tr><th>{esc(zh)}<br><small>{esc(en)}</small></th><td><code>{esc(v)}</code></td></tr>"
                      for zh, en, v in _facts(kit))

    def blocks(snippets) -> str:
        return "\n".join(f"<h3>{esc(s.title_zh)} <small>{esc(s.title_en)}</small></h3>\n<pre><code>{esc(s.code)}</code></pre>"
                         for s in snippets)

    deep = ""
    if kit.deep:
        deep = (f"<h2>二、深度埋码 <small>2. Deep tag</small></h2>\n<p>加载 <code>{esc(kit.script)}</code>（上面的代码已是），"
                f"以下是本平台申报的采集项。<br>Load <code>{esc(kit.script)}</code> (the snippets above do); these are the "
                f"items this platform declared.</p>\n{blocks(kit.deep)}")
    endpoints = "\n".join(f"<tr><td><code>{esc(u)}</code></td><td>{esc(zh)}<br><small>{esc(en)}</small></td></tr>"
                          for u, zh, en in kit.endpoints)
    checklist = "\n".join(f"<li>{esc(zh)}<br><small>{esc(en)}</small></li>" for zh, en in kit.checklist)
    return PAGE.format(
        title=esc(p.name), facts=facts, snippets=blocks(kit.snippets), deep=deep, endpoints=endpoints,
        checklist=checklist, generated=_now(),
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
<title>{title} — 接入开发文档 Integration kit</title>
<style>
body{{font:15px/1.6 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}}
pre{{background:#f4f4f4;padding:.8rem;overflow:auto;font-size:13px}}
table{{border-collapse:collapse}} th,td{{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}}
small{{color:#666;font-weight:normal}}
</style>
</head>
<body>
<h1>{title} — 接入开发文档 <small>Integration kit</small></h1>
<table>
{facts}
</table>
<h2>一、埋码 <small>1. The snippet</small></h2>
<p>把下面任意一段代码放进每个页面的 <code>&lt;head&gt;</code>。<br><small>Paste one of these into the
<code>&lt;head&gt;</code> of every page.</small></p>
{snippets}
{deep}
<h2>接口 <small>Endpoints</small></h2>
<table>
{endpoints}
</table>
<h2>验证清单 <small>Verification checklist</small></h2>
<ol>
{checklist}
</ol>
<p><small>生成时间 / generated {generated}</small></p>
</body>
</html>
"""
