"""Command line: `collector serve`, `inspect`, `stats`, `platforms` and `admin-token`.

Every setting is a flag and a COLLECTOR_* variable; flags win over the environment,
which wins over the defaults in settings.Settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from importlib import metadata

import orjson

from collector.registry import cli as registry_cli
from collector.report import cli as report_cli
from collector.settings import Settings, SettingsError, describe, parser_for

from .stats_cli import add_stats_command, run_stats


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="collector", description="edu-beacon collector edge server")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the collector", formatter_class=argparse.RawDescriptionHelpFormatter)
    for f, (flag, env, default, text) in zip(dataclasses.fields(Settings), describe(), strict=True):
        # argparse %-formats help texts: a literal % (as in "90 % of ...") must be doubled.
        help_text = f"{text} (env {env}, default {default!r})".replace("%", "%%")
        if isinstance(f.default, bool):
            serve.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            serve.add_argument(flag, dest=f.name, type=parser_for(f), default=None, metavar=f.name.upper(), help=help_text)

    inspect = commands.add_parser("inspect", help="print the enrichment of an IP and User-Agent as JSON")
    inspect.add_argument("--ip", default="", help="client IP address")
    inspect.add_argument("--ua", default="", help="User-Agent header")
    inspect.add_argument("--ch-mobile", default=None, help="Sec-CH-UA-Mobile header value (?1 or ?0)")
    inspect.add_argument("--screen", default="", help="screen size WIDTHxHEIGHT as the beacon reports it")
    inspect.add_argument("--touch-points", type=int, default=0, help="navigator.maxTouchPoints as the beacon reports it")
    inspect.add_argument("--geo-db", default=None, help="comma-separated MMDB paths (env COLLECTOR_GEO_DB)")
    inspect.add_argument("--jsonl", action="store_true", help='read {"ip": ..., "ua": ...} lines on stdin')
    add_stats_command(commands)
    registry_cli.add_commands(commands)
    report_cli.add_commands(commands)
    return parser


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), as `pip show` reports it."""
    try:
        return metadata.version("edu-beacon-collector")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        from . import __version__

        return __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from collector.server import serve

            overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)}
            serve(Settings.from_env(**overrides))
        elif args.command == "stats":
            return run_stats(args)
        elif args.command in ("platforms", "admin-token"):
            return registry_cli.run(args)
        elif args.command in ("report", "groups"):
            return report_cli.run(args)
        else:
            return inspect(args)
    except SettingsError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 2
    return 0


def inspect(args: argparse.Namespace) -> int:
    from collector.enrich.device import DeviceClassifier
    from collector.enrich.enrichment import enrich
    from collector.web.resources import open_geo

    settings = Settings.from_env(geo_db=args.geo_db)
    geo = open_geo(settings)
    devices = DeviceClassifier()
    if not args.jsonl:
        width, _, height = args.screen.partition("x")
        result = enrich(geo, devices, args.ip, args.ua, args.ch_mobile, _int(width), _int(height), args.touch_points)
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
            result = enrich(geo, devices, str(item.get("ip", "")), str(item.get("ua", "")), item.get("ch_mobile"))
        except (orjson.JSONDecodeError, AttributeError) as exc:
            result = {"error": f"bad input line: {exc}"}
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0
