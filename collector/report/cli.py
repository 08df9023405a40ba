"""`collector report …` and `collector groups …` from the shell.

Both talk to Redis directly, like `collector platforms` (the `redis_url` setting, or the
embedded Redis a running `collector serve` keeps under `data_dir`): a report is a read
of the rollups, and needs no running collector nor read credential.

    collector report --group province:33 --month 2026-10 --format pdf -o zj-2026-10.pdf
    collector report --app zjer --from 2017-08-21 --to 2017-09-20 --format md
    collector groups list
    collector groups create east --platforms zjer,nbedu --title 东部平台
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from pathlib import Path

import orjson

from collector.api.stats import BadQuery, StatsReader
from collector.registry import table
from collector.registry.cli import CommandError as RegistryCommandError
from collector.registry.cli import redis_url
from collector.registry.groups import BadGroup
from collector.registry.store import RegistryStore
from collector.report.build import ReportBuilder, subject_for
from collector.report.period import BadPeriod, parse_period
from collector.report.render import FORMATS, FontMissing, render
from collector.settings import Settings, SettingsError
from collector.store import redis_client
from collector.store.buckets import Calendar


class CommandError(Exception):
    pass


def add_commands(commands: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis-url", default=None, help="Redis URL (env COLLECTOR_REDIS_URL); empty: the embedded Redis of --data-dir")
    common.add_argument("--data-dir", default=None,
                        help="data dir of a running `collector serve` with embedded Redis (env COLLECTOR_DATA_DIR)")

    report = commands.add_parser("report", parents=[common], help="the monthly report of a platform or group (md, html, pdf, csv, json)",
                                 description="访问指标 and the standard's table 4 for a platform or group. "
                                             "Example: collector report --group province:33 --month 2026-10 --format pdf -o zj.pdf")
    subject = report.add_mutually_exclusive_group(required=True)
    subject.add_argument("--app", help="a platform id")
    subject.add_argument("--group", help="a group: all, province:NN, prefecture:NNNN, org:NAME, set:NAME")
    report.add_argument("--month", help="a calendar month YYYY-MM (default: the last whole month)")
    report.add_argument("--from", dest="start", help="first day YYYY-MM-DD (with --to, instead of --month)")
    report.add_argument("--to", dest="end", help="last day YYYY-MM-DD, included")
    report.add_argument("--format", default="md", choices=FORMATS, help="output format (default md)")
    report.add_argument("-o", "--output", default="-", help="file to write (default: standard output; a PDF needs a file)")

    groups = commands.add_parser("groups", help="groups of platforms: list them, make named sets")
    sub = groups.add_subparsers(dest="groups_command", required=True)
    sub.add_parser("list", parents=[common], help="every group: all, provinces, prefectures, organisations, named sets")
    create = sub.add_parser("create", parents=[common], help="create or replace a named set (read it as set:NAME)")
    create.add_argument("name")
    create.add_argument("--platforms", required=True, help="comma-separated platform ids")
    create.add_argument("--title", default="", help="display name (default: the name)")
    sub.add_parser("delete", parents=[common], help="delete a named set").add_argument("name")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(redis_url=args.redis_url, data_dir=args.data_dir)
        return asyncio.run(_run(args, settings, redis_url(settings)))
    except (CommandError, RegistryCommandError, BadGroup, BadPeriod, FontMissing, BadQuery, SettingsError) as exc:
        print(f"collector {args.command}: {exc}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings, url: str) -> int:
    client = redis_client.connect(url, socket_timeout=30, socket_connect_timeout=3)
    try:
        if args.command == "report":
            return await _report(client, args, settings)
        return await _groups(RegistryStore(client), args)
    finally:
        await client.aclose()


async def _report(client, args: argparse.Namespace, settings: Settings) -> int:
    calendar = Calendar(settings.timezone)
    reader = StatsReader(client, calendar, time.time)
    period = parse_period(calendar.local(time.time()).date(), args.month, args.start, args.end)
    subject = await subject_for(RegistryStore(client), "group" if args.group else "app", args.group or args.app)
    report = await ReportBuilder(reader).build(subject, period, time.time())
    body = render(report, args.format, settings.report_font)
    if args.output == "-":
        if args.format == "pdf" and sys.stdout.isatty():
            raise CommandError("a PDF is not for the terminal: -o FILE")
        sys.stdout.buffer.write(body)
    else:
        Path(args.output).write_bytes(body)
        print(f"{args.output}: {report['title']}", file=sys.stderr)
    return 0


async def _groups(store: RegistryStore, args: argparse.Namespace) -> int:
    actor = f"cli:{getpass.getuser()}"
    if args.groups_command == "list":
        rows = [(g.id, g.name, str(len(g.platforms)), ",".join(g.platforms)) for g in await store.groups()]
        print(table.render(("组 group", "名称 name", "平台数 platforms", "平台 ids"), rows))
    elif args.groups_command == "create":
        platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
        saved = await store.save_set(args.name, args.title, platforms, actor)
        print(orjson.dumps(saved.as_dict(), option=orjson.OPT_INDENT_2).decode())
        print(f"已保存 saved: set:{saved.name} ({len(saved.platforms)} platforms)", file=sys.stderr)
    elif not await store.delete_set(args.name, actor):
        raise CommandError(f"no set {args.name!r}")
    return 0
