"""`collector platforms …` and `collector admin-token …`: the registry from the shell.

They talk to Redis directly (the `redis_url` setting, or the embedded Redis a running
`collector serve` keeps under `data_dir`). Tables are Chinese first with English;
`--json` prints machine-readable output instead.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import datetime

import orjson

from collector.embedded_redis import running_url
from collector.registry import application, table
from collector.registry.health import HEALTH_NAMES
from collector.registry.health_store import HealthStore
from collector.registry.kit import KitUnavailable, build_kit
from collector.registry.kit_page import render_html, render_markdown
from collector.registry.model import ENVIRONMENTS, PLATFORM_TYPES, STATE_NAMES, TRANSITIONS, TransitionError
from collector.registry.release import load_release
from collector.registry.store import AlreadyExists, Issued, NotFound, RegistryStore
from collector.settings import Settings, SettingsError, resolve_path
from collector.store import redis_client
from collector.store.buckets import Calendar


class CommandError(Exception):
    """Refused: printed as `collector platforms: …`, exit status 1."""


def add_commands(commands: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis-url", default=None, help="Redis URL (env COLLECTOR_REDIS_URL); empty: the embedded Redis of --data-dir")
    common.add_argument("--data-dir", default=None,
                        help="data dir of a running `collector serve` with embedded Redis (env COLLECTOR_DATA_DIR)")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    common.add_argument("--actor", default=f"cli:{_user()}", help="who makes the change, for the audit log")

    group = commands.add_parser("platforms", help="the access-platform registry: apply, approve, kit, audit")
    sub = group.add_subparsers(dest="platforms_command", required=True)
    apply = sub.add_parser("apply", parents=[common], help="register an application (state: applied)")
    apply.add_argument("--from-json", metavar="FILE", help="the application as JSON (- for stdin); flags below override it")
    for name, text in (("id", "platform id: [a-z0-9][a-z0-9-]{0,31}"), ("name", "platform name"),
                       ("type", "resource | service | management (资源平台 | 服务平台 | 管理平台)"),
                       ("org", "owning organisation"), ("region", "its GB/T 2260 code, e.g. 330000"),
                       ("domains", "comma-separated hosts and wildcards, e.g. www.zjer.cn,*.zjer.cn"),
                       ("environment", "production | test"), ("events", "comma-separated event types"),
                       ("dimensions", "comma-separated resource dimensions: rtype,subject,stage,source"),
                       ("contact-name", "contact person"), ("contact-email", "contact e-mail"),
                       ("contact-phone", "contact phone"), ("foreign-origin", "reject | flag: hits from other domains"),
                       ("purpose", "why the platform applies")):
        apply.add_argument("--" + name, help=text)
    apply.add_argument("--deep", action="store_true", help="declare the deep tag (clicks, media, interactions, users)")
    apply.add_argument("--page-codes", action="store_true", help="declare that its pages carry page codes (health checks they arrive)")

    listing = sub.add_parser("list", parents=[common], help="every platform, or those in one state")
    listing.add_argument("--state", choices=sorted(STATE_NAMES))
    sub.add_parser("show", parents=[common], help="one platform's record").add_argument("id")
    for action in TRANSITIONS:
        p = sub.add_parser(action, parents=[common], help=f"{action} a platform ({_targets(action)})")
        p.add_argument("id")
        p.add_argument("--note", default="", help="the reason, kept with the record and in the audit log")
    rotate = sub.add_parser("rotate-key", parents=[common], help="issue a new app key; the old one stays valid for --overlap")
    rotate.add_argument("id")
    rotate.add_argument("--overlap", type=int, default=None,
                        help="seconds the old key stays valid (env COLLECTOR_KEY_OVERLAP, default 7 days)")
    sub.add_parser("read-token", parents=[common],
                   help="issue the platform's read token for /api/stats (its own figures only); the old one stops working"
                   ).add_argument("id")
    kit = sub.add_parser("kit", parents=[common], help="print the integration kit (Markdown, HTML or JSON)")
    kit.add_argument("id")
    kit.add_argument("--format", choices=("md", "html"), default="md")
    kit.add_argument("--public-url", default=None, help="collector URL the pages reach (env COLLECTOR_PUBLIC_URL)")
    kit.add_argument("--new-token", action="store_true", help="issue a new kit token (the old one stops working)")
    audit = sub.add_parser("audit", parents=[common], help="the audit log, newest first")
    audit.add_argument("id", nargs="?", help="only this platform's entries")
    audit.add_argument("--limit", type=int, default=50)
    health = sub.add_parser("health", parents=[common], help="health (§8.4): every platform's state, or one's with its history and checks")
    health.add_argument("id", nargs="?", help="one platform: its record, transitions and daily validation")
    health.add_argument("--limit", type=int, default=20, help="transitions shown")
    anomalies = sub.add_parser("anomalies", parents=[common], help="hourly PV/UV anomalies and their webhook delivery, newest first")
    anomalies.add_argument("--platform", default=None, help="only this platform's")
    anomalies.add_argument("--limit", type=int, default=50)

    tokens = commands.add_parser("admin-token", help="admin tokens for /api/admin/* and /kit/*")
    token_sub = tokens.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", parents=[common], help="create a token; it is printed once and stored hashed")
    create.add_argument("--name", required=True, help="whose token it is (shown in the audit log)")
    token_sub.add_parser("list", parents=[common], help="names and dates of the admin tokens")


def redis_url(settings: Settings) -> str:
    """The Redis a command talks to: redis_url, or the embedded one of a running serve."""
    url = settings.redis_url or running_url(settings.data_dir)
    if not url:
        raise CommandError(f"no Redis: pass --redis-url (COLLECTOR_REDIS_URL), or run `collector serve` with "
                           f"--data-dir {settings.data_dir} so its embedded Redis is up")
    return url


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(redis_url=args.redis_url, data_dir=args.data_dir)
        return asyncio.run(_run(args, settings, redis_url(settings)))
    except (CommandError, NotFound, AlreadyExists, TransitionError, KitUnavailable, SettingsError) as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 1
    except application.ApplicationInvalid as exc:
        for problem in exc.problems:
            print(f"collector: {problem.field}: {problem.reason}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Settings, url: str) -> int:
    client = redis_client.connect(url, socket_timeout=5, socket_connect_timeout=3)
    try:
        store = RegistryStore(client)
        if args.command == "admin-token":
            return await _admin_token(store, args)
        handler = COMMANDS.get(args.platforms_command, _transition)
        return await handler(store, args, settings)
    finally:
        await client.aclose()


async def _apply(store: RegistryStore, args, settings) -> int:
    payload = _read_json(args.from_json) if args.from_json else {}
    flags = {name: getattr(args, name) for name in ("id", "name", "type", "org", "region", "domains", "environment", "purpose")}
    payload.update({k: v for k, v in flags.items() if v is not None})
    if args.foreign_origin:
        payload["foreign_origin"] = args.foreign_origin
    contact = {k: getattr(args, "contact_" + k) for k in ("name", "email", "phone") if getattr(args, "contact_" + k)}
    if contact:
        payload["contact"] = {**payload.get("contact", {}), **contact}
    scope = dict(payload.get("scope", {}))
    for name in ("events", "dimensions"):
        if getattr(args, name):
            scope[name] = getattr(args, name)
    if args.deep:
        scope["deep"] = True
    if args.page_codes:
        scope["page_codes"] = True
    if scope:
        payload["scope"] = scope
    platform = await store.apply(application.parse_application(payload), args.actor)
    state = f"{STATE_NAMES[platform.state]} {platform.state}"
    _print(args, platform.public_dict(), f"已登记申请 application registered: {platform.id} ({state})")
    return 0


async def _list(store: RegistryStore, args, settings) -> int:
    platforms = await store.list(args.state)
    if args.json:
        return _print(args, [p.public_dict() for p in platforms], "")
    rows = [(p.id, p.name, f"{PLATFORM_TYPES[p.type]} {p.type}", f"{STATE_NAMES[p.state]} {p.state}",
             p.environment, p.region, ",".join(p.domains)) for p in platforms]
    print(table.render(("编号 id", "名称 name", "类型 type", "状态 state", "环境 env", "地区 region", "域名 domains"), rows))
    return 0


async def _show(store: RegistryStore, args, settings) -> int:
    p = await store.get(args.id)
    if args.json:
        return _print(args, p.public_dict(), "")
    scope = p.scope
    pairs = [
        ("编号 id", p.id), ("名称 name", p.name), ("类型 type", f"{PLATFORM_TYPES[p.type]} {p.type}"),
        ("单位 org", p.org), ("地区 region", p.region), ("状态 state", f"{STATE_NAMES[p.state]} {p.state}"),
        ("环境 environment", f"{ENVIRONMENTS[p.environment]} {p.environment}"), ("域名 domains", ", ".join(p.domains)),
        ("外域 foreign origin", p.foreign_origin),
        ("范围 scope",
         f"basic={scope.basic} deep={scope.deep} events={','.join(scope.events)} dimensions={','.join(scope.dimensions) or '-'}"),
        ("联系人 contact", " ".join(x for x in (p.contact.name, p.contact.email, p.contact.phone) if x)),
        ("appKey", p.app_key or "-"),
        *((f"旧 appKey retired (至 until {_time(r.until)})", r.key) for r in p.retired_keys),
        ("申请说明 purpose", p.purpose or "-"), ("备注 note", p.note or "-"),
        ("创建 created", _time(p.created_at)), ("更新 updated", _time(p.updated_at)),
    ]
    print(table.render_pairs(pairs))
    return 0


async def _transition(store: RegistryStore, args, settings) -> int:
    issued = await store.act(args.id, args.platforms_command, args.actor, args.note)
    return _print_issued(args, issued, settings)


async def _rotate_key(store: RegistryStore, args, settings) -> int:
    overlap = settings.key_overlap if args.overlap is None else args.overlap
    if overlap < 0:
        raise CommandError("--overlap must not be negative")
    issued = await store.rotate_key(args.id, args.actor, overlap)
    return _print_issued(args, issued, settings, f"旧 appKey 有效至 old key valid until {_time(issued.platform.retired_keys[-1].until)}")


async def _kit(store: RegistryStore, args, settings) -> int:
    platform = await store.get(args.id)
    base_url = args.public_url or _base_url(settings)
    kit = build_kit(platform, base_url, load_release(resolve_path(settings.beacon_dir)))
    if args.new_token:
        token = (await store.reissue_kit_token(args.id, args.actor)).kit_token
        print(f"kit token（只显示这一次 shown only this once）: {token}", file=sys.stderr)
    if args.json:
        return _print(args, kit.as_json(), "")
    print(render_html(kit) if args.format == "html" else render_markdown(kit))
    return 0


async def _read_token(store: RegistryStore, args, settings) -> int:
    issued = await store.issue_read_token(args.id, args.actor)
    return _print(args, {"id": args.id, "read_token": issued.read_token},
                  f"读取令牌 read token for {args.id}（只读本平台数据，只显示这一次 its own figures only, shown only this once）:\n"
                  f"{issued.read_token}")


async def _audit(store: RegistryStore, args, settings) -> int:
    entries = await store.audit(max(1, min(args.limit, 10_000)), args.id)
    if args.json:
        return _print(args, entries, "")
    rows = [(_time(e["at"]), e["actor"], e["action"], e["platform"], f"{e['before'] or '-'} → {e['after'] or '-'}",
             orjson.dumps(e["detail"]).decode() if e["detail"] else "") for e in entries]
    print(table.render(("时间 at", "操作人 actor", "操作 action", "平台 platform", "状态 state", "详情 detail"), rows))
    return 0


async def _admin_token(store: RegistryStore, args) -> int:
    if args.token_command == "create":
        if not args.name.strip() or len(args.name) > 64:
            raise CommandError("--name must be 1-64 characters")
        token = await store.create_admin_token(args.name.strip(), args.actor)
        return _print(args, {"name": args.name, "token": token},
                      f"管理令牌 admin token for {args.name}（只显示这一次 shown only this once）:\n{token}")
    tokens = await store.admin_tokens()
    if args.json:
        return _print(args, tokens, "")
    print(table.render(("名称 name", "创建 created"), [(t["name"], _time(t["created_at"])) for t in tokens]))
    return 0


async def _health(store: RegistryStore, args, settings) -> int:
    health = HealthStore(store.redis, Calendar(settings.timezone))
    if args.id is None:
        records = await health.all()
        if args.json:
            return _print(args, [records[pid].as_dict() for pid in sorted(records)], "")
        rows = [(r.platform, f"{HEALTH_NAMES[r.state]} {r.state}", _time(r.since), _time(r.checked_at),
                 (r.validation or {}).get("verdict", "-"), "; ".join(x.en for x in r.reasons) or "-")
                for r in (records[pid] for pid in sorted(records))]
        print(table.render(("平台 platform", "健康 health", "起始 since", "检查 checked", "校验 validation", "原因 reasons"), rows))
        return 0
    await store.get(args.id)  # NotFound for an unknown id
    record = await health.get(args.id)
    history = await health.history(args.id, max(1, min(args.limit, 500)))
    if args.json:
        return _print(args, {"health": record.as_dict() if record else None, "history": history}, "")
    if record is None:
        print(f"{args.id}: 尚无健康记录 no health record yet (the job records approved and active platforms)")
        return 0
    pairs = [("平台 platform", record.platform), ("健康 health", f"{HEALTH_NAMES[record.state]} {record.state}"),
             ("起始 since", _time(record.since)), ("检查 checked", _time(record.checked_at)),
             ("首次命中 first hit", _time(record.first_hit_at)),
             *((f"原因 reason {r.code}", f"{r.zh} / {r.en}") for r in record.reasons),
             *((f"数据 {name}", str(value)) for name, value in record.figures.items())]
    print(table.render_pairs(pairs))
    if record.validation:
        v = record.validation
        print(f"\n科学校验 validation {v['day']}: {v['verdict']}")
        print(table.render(("检查 check", "数值 figure", "结论 verdict", "说明 note"),
                           [(f"{c['zh']} {c['code']}", "-" if c["figure"] is None else str(c["figure"]), c["verdict"], c["note"] or "-")
                            for c in v["checks"]]))
    if history:
        print("\n状态变化 transitions:")
        print(table.render(("时间 at", "之前 before", "之后 after", "原因 reasons"),
                           [(_time(t["at"]), t["before"] or "-", t["after"], ",".join(t["reasons"]) or "-") for t in history]))
    return 0


async def _anomalies(store: RegistryStore, args, settings) -> int:
    health = HealthStore(store.redis, Calendar(settings.timezone))
    found = await health.anomalies(max(1, min(args.limit, 10_000)), args.platform)
    if args.json:
        return _print(args, found, "")
    rows = [(a["platform"], a["hour"], a["metric"], f"{a['kind']} {a['severity']}", str(a["value"]),
             _expected(a), str(a["score"]),
             f"{a['delivery']['state']} ×{a['delivery']['attempts']}") for a in found]
    print(table.render(("平台 platform", "小时 hour", "指标 metric", "类型 kind", "数值 value", "预期 expected", "偏离 score",
                        "推送 delivery"), rows))
    return 0


def _expected(anomaly: dict) -> str:
    """The expected range of an hour's figure; for a health alert, its reasons."""
    if anomaly["metric"] == "health":
        return anomaly.get("note", "")[:80]
    return f"{anomaly['low']:.0f}–{anomaly['high']:.0f} (≈{anomaly['expected']:.0f})"


COMMANDS = {"health": _health, "anomalies": _anomalies, "apply": _apply, "list": _list, "show": _show,
            "rotate-key": _rotate_key, "kit": _kit, "audit": _audit, "read-token": _read_token}


def _print_issued(args, issued: Issued, settings: Settings, extra: str = "") -> int:
    p = issued.platform
    body = {**p.public_dict(), "issued_app_key": issued.app_key, "issued_kit_token": issued.kit_token}
    lines = [f"{STATE_NAMES[p.state]} {p.state}: {p.id}"]
    if issued.app_key:
        lines.append(f"appKey: {issued.app_key}")
    if issued.kit_token:  # §8.3: the kit is generated with the approval
        lines.append(f"kit token（只显示这一次 shown only this once）: {issued.kit_token}")
        base = _base_url(settings)
        lines.append(f"开发文档 kit: collector platforms kit {p.id}  |  {base}/kit/{p.id}?token=KIT-TOKEN")
        kit = build_kit(p, base, load_release(resolve_path(settings.beacon_dir)))
        lines += ["", f"{kit.snippets[0].title_zh} {kit.snippets[0].title_en}:", kit.snippets[0].code]
    if extra:
        lines.append(extra)
    return _print(args, body, "\n".join(lines))


def _base_url(settings: Settings) -> str:
    """The collector URL kits name: the `public_url` setting, else this machine's port."""
    return settings.public_url or f"http://localhost:{settings.port}"


def _print(args, body, text: str) -> int:
    sys.stdout.write((orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() if args.json else text) + "\n")
    return 0


def _read_json(path: str) -> dict:
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        payload = orjson.loads(text)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CommandError(f"--from-json {path}: {exc}") from exc
    if not isinstance(payload, dict):
        raise CommandError(f"--from-json {path}: must hold a JSON object")
    return payload


def _targets(action: str) -> str:
    starts, target = TRANSITIONS[action]
    return f"{'/'.join(sorted(starts)) if len(starts) < 4 else 'any'} → {target}"


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
