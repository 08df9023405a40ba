"""The integration kit (§8.3 派发管理): what a platform's developers paste, and how they check it.

`build_kit` turns a platform record, the collector's public URL and the beacon release
into snippets (appendix-A `aplus_queue`, our `eb_queue`, the SRI-pinned one), the deep-tag
commands of exactly what the platform declared, the endpoints and a checklist.
kit_page.py renders it as HTML or Markdown. No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from collector.registry.model import KEYED_STATES, Platform
from collector.registry.release import BeaconRelease

_BASE_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(?:/[A-Za-z0-9._~/-]*)?$")
# Resource labels: the protocol field (for `media`/interactions) and the markup attribute.
LABEL_FIELDS = {"rtype": ("rt", "video"), "subject": ("subj", "math"), "stage": ("stage", "junior"), "source": ("src", "local")}


class KitUnavailable(ValueError):
    pass


@dataclass(frozen=True)
class Snippet:
    title_zh: str
    title_en: str
    code: str


@dataclass(frozen=True)
class Kit:
    platform: Platform
    base_url: str  # https://collector.example.edu.cn
    host: str  # collector.example.edu.cn: appendix A's aplus-rhost-v
    script: str  # beacon.js or beacon.full.js
    snippets: tuple[Snippet, ...]
    deep: tuple[Snippet, ...]
    endpoints: tuple[tuple[str, str, str], ...]  # (path, 中文, English)
    checklist: tuple[tuple[str, str], ...]  # (中文, English)

    def as_json(self) -> dict:
        snippet = lambda s: {"title_zh": s.title_zh, "title_en": s.title_en, "code": s.code}  # noqa: E731
        return {
            "platform": self.platform.id, "app_key": self.platform.app_key, "collector": self.base_url,
            "host": self.host, "script": self.script,
            "snippets": [snippet(s) for s in self.snippets], "deep": [snippet(s) for s in self.deep],
            "endpoints": [{"url": u, "zh": zh, "en": en} for u, zh, en in self.endpoints],
            "checklist": [{"zh": zh, "en": en} for zh, en in self.checklist],
        }


def build_kit(platform: Platform, base_url: str, release: BeaconRelease | None) -> Kit:
    if platform.state not in KEYED_STATES or not platform.app_key:
        raise KitUnavailable(f"platform {platform.id!r} is {platform.state}: a kit exists once it is approved")
    base_url = base_url.rstrip("/")
    if not _BASE_URL.match(base_url):
        raise KitUnavailable(f"collector URL {base_url!r} must be http(s)://host[:port][/path]")
    host = urlsplit(base_url).netloc
    build = release.full if (platform.scope.deep and release) else (release.basic if release else None)
    script = "beacon.full.js" if platform.scope.deep else "beacon.js"
    snippets = [
        Snippet("推荐代码（eb_queue）", "Our snippet (eb_queue)", eb_queue_snippet(base_url, script, platform.app_key)),
        Snippet("标准附录 A 形式（aplus_queue）", "The standard's appendix-A form (aplus_queue)",
                aplus_snippet(base_url, host, script, platform.app_key)),
    ]
    if build and release:  # (a build comes from a release)
        snippets.append(Snippet(
            f"锁定版本（子资源完整性，v{release.version}）", f"Pinned version (Subresource Integrity, v{release.version})",
            pinned_snippet(base_url, build.frozen, build.sri, platform.app_key),
        ))
    return Kit(platform, base_url, host, script, tuple(snippets), deep_commands(platform), _endpoints(base_url, script, platform),
               _checklist(base_url, platform))


def eb_queue_snippet(base_url: str, script: str, app_key: str) -> str:
    return (
        "<script>\n"
        "(function(w,d,s,q){w[q]=w[q]||[];var f=d.getElementsByTagName(s)[0],j=d.createElement(s);\n"
        f"j.async=true;j.src='{base_url}/{script}';f.parentNode.insertBefore(j,f)}})(window,document,'script','eb_queue');\n"
        f"eb_queue.push({{action: 'set', arguments: ['appKey', '{app_key}']}});\n"
        "</script>"
    )


def aplus_snippet(base_url: str, host: str, script: str, app_key: str) -> str:
    """Appendix A.1's snippet, line for line, with our script, the platform's key and host."""
    return f"""<script>
//将该代码放在页面 head 标签内
(function(w, d, s, q) {{
    w[q] =w[q] || [];
    var f=d.getElementsByTagName(s)[0],j=d.createElement(s);
    j.async=true;
    j.id='beacon-aplus';
    j.src='{base_url}/{script}';
    f.parentNode.insertBefore(j, f);
}})(window, document, 'script', 'aplus_queue');
//集成应用的 appKey
aplus_queue.push({{action: 'aplus.setMetaInfo', arguments: ['appKey', '{app_key}']}});
//添加日志域名埋点
aplus_queue.push({{action: 'aplus.setMetaInfo', arguments: ['aplus-rhost-v', '{host}']}});
//设置 DEBUG 模式, 生产环境请设置为 false
aplus_queue.push({{action: 'aplus.setMetaInfo', arguments: ['DEBUG', false]}});
</script>"""


def pinned_snippet(base_url: str, frozen: str, sri: str, app_key: str) -> str:
    # crossorigin="anonymous": browsers check SRI on another origin only over CORS.
    return (
        "<script>\n"
        "window.eb_queue = window.eb_queue || [];\n"
        f"eb_queue.push({{action: 'set', arguments: ['appKey', '{app_key}']}});\n"
        "</script>\n"
        f'<script async src="{base_url}/{frozen}"\n'
        f'        integrity="{sri}" crossorigin="anonymous"></script>'
    )


def deep_commands(platform: Platform) -> tuple[Snippet, ...]:
    """The deep tag's commands and attributes for what the platform declared, nothing more."""
    scope = platform.scope
    if not scope.deep:
        return ()
    labels = [LABEL_FIELDS[d] for d in scope.dimensions]
    attrs = "".join(f' data-eb-{field}="{example}"' for field, example in labels)
    meta = ", ".join(f"{field}: '{example}'" for field, example in labels)
    commands = [Snippet("登录用户（登录后调用，退出时传空）", "Logged-in user (after login; empty on logout)",
                        "eb_queue.push({action: 'setUser', arguments: ['USER-ID']});")]
    if "click" in scope.events:
        commands.append(Snippet("点击事件", "Clicks",
            "<button data-eb-click=\"signup\" data-eb-p='{\"plan\":\"free\"}'>注册</button>\n"
            "<!-- 无法改动标记时 / when the markup cannot change: -->\n"
            "eb_queue.push({action: 'set', arguments: ['clicks', [{selector: '.download', name: 'download'}]]});"))
    if "exposure" in scope.events:
        commands.append(Snippet("点击轨迹与曝光", "Click tracks and exposure",
            '<ul data-eb-track="navbar">\n  <li data-eb-pos="1" data-eb-item="首页"><a href="/">首页</a></li>\n'
            '  <li data-eb-pos="2" data-eb-item="课程"><a href="/course">课程</a></li>\n</ul>'))
    if "media" in scope.events:
        commands.append(Snippet("播放器（视频、音频）", "Media (video, audio)",
            f'<video src="/media/lesson1.mp4" data-eb-rid="RESOURCE-ID"{attrs}></video>\n'
            "<!-- 自定义播放器 / custom players: -->\n"
            f"eb_queue.push({{action: 'media', arguments: [element, {{rid: 'RESOURCE-ID'{', ' + meta if meta else ''}}}]}});"))
    if "interaction" in scope.events:
        extra = f", {{{meta}}}" if meta else ""
        commands.append(Snippet("评价、点赞、分享、收藏", "Ratings, likes, shares, favorites", "\n".join(
            f"eb_queue.push({{action: '{action}', arguments: ['RESOURCE-ID'{arg}{extra}]}});"
            for action, arg in (("rate", ", 5"), ("like", ""), ("share", ", 'wechat'"), ("favorite", ""))
        )))
    if "custom" in scope.events:
        commands.append(Snippet("自定义事件", "Custom events",
            "eb_queue.push({action: 'record', arguments: ['EVENT-NAME', 'custom', {key: 'value'}]});"))
    return tuple(commands)


def _endpoints(base_url: str, script: str, platform: Platform) -> tuple[tuple[str, str, str], ...]:
    return (
        (f"{base_url}/{script}", "采集脚本", "the beacon script"),
        (f"{base_url}/c", "数据接收（GET/POST，成功返回 204）", "hits in (GET/POST, 204 when accepted)"),
        (f"{base_url}/kit/{platform.id}", "本开发文档", "this developer page"),
        (f"{base_url}/readyz", "采集服务就绪检查", "collector readiness"),
    )


def _checklist(base_url: str, platform: Platform) -> tuple[tuple[str, str], ...]:
    domains = ", ".join(platform.domains)
    return (
        ("把代码放进每个页面的 <head>（单页应用放进它唯一的页面）。",
         "Put the snippet in the <head> of every page (for a single-page app, its one page)."),
        (f"页面须在登记的域名下：{domains}。", f"Pages must be on the registered domains: {domains}."),
        ("打开任一页面并在地址后加 ?eb_debug=1：控制台以 [edu-beacon] 打印每条命令、每次发送和不发送的原因（?eb_debug=0 关闭）。",
         "Open any page with ?eb_debug=1: the console prints, prefixed [edu-beacon], every command, every hit and "
         "every reason for not sending (?eb_debug=0 switches it off)."),
        (f"在开发者工具的“网络”面板中，发往 {base_url}/c 的请求应返回 204；返回 400 时响应体写明原因。",
         f"In the developer tools' Network panel, requests to {base_url}/c answer 204; a 400 names the problem in its body."),
        (f"请管理员确认平台状态（collector platforms show {platform.id}，或 GET /api/admin/platforms/{platform.id}）"
         f"及统计（/api/stats）中出现本平台的访问量；采集服务健康检查为 {base_url}/readyz。",
         f"Ask the administrator to check the platform's state (collector platforms show {platform.id}, or "
         f"GET /api/admin/platforms/{platform.id}) and that its page views appear in /api/stats; the collector's "
         f"health check is {base_url}/readyz."),
        ("验证完成后关闭 DEBUG（生产环境中 DEBUG 必须为 false）。", "Switch DEBUG off once verified (it must be false in production)."),
    )
