"""`GET /api/report` (the monthly report of a platform or group, docs/groups-and-reports.md)
and the monthly report job in the running collector (report/job.py).

Who may read a report: exactly who may read the same `/api/stats` (stats_routes.py
ReadAccess, StatsAPI.readable). The PDF is drawn in a thread: reportlab is CPU work that
must not hold up hits for the few hundred milliseconds it takes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from collector.api.stats import BadQuery, StatsReader
from collector.registry.groups import BadGroup
from collector.report.build import ReportBuilder, subject_for
from collector.report.job import ReportJob, ReportSettings
from collector.report.period import BadPeriod, parse_period
from collector.report.render import FORMATS, MEDIA_TYPES, FontMissing, render
from collector.store import keys
from collector.store.lease import Lease
from collector.store.periodic import Periodic
from collector.web.appkeys import CALENDAR, CLOCK, REDIS, SETTINGS
from collector.web.platform_health import WebhookSender
from collector.web.stats_routes import Refusal, StatsAPI, stats_api

log = logging.getLogger(__name__)


def add_report_routes(app: web.Application) -> None:
    app.router.add_get("/api/report", api_report)


async def api_report(request: web.Request) -> web.Response:
    api = stats_api(request)
    fmt = request.query.get("format", "json")

    async def report() -> dict:
        who = await api.access.reader(request)
        if fmt not in FORMATS:
            raise Refusal(400, "format must be one of " + ", ".join(FORMATS))
        kind = api.reader.subject_kind(request.query)
        subject_id = request.query.get("app", "") or request.query.get("group", "")
        if not subject_id or (request.query.get("app") and request.query.get("group")):
            raise Refusal(400, "give app or group (one of them)")
        await api.readable(who, subject_id, kind)
        try:
            period = parse_period(api.reader.calendar.local(api.reader.clock()).date(), request.query.get("month"),
                                  request.query.get("from"), request.query.get("to"))
            subject = await subject_for(api.access.registry, kind, subject_id)
        except (BadPeriod, BadGroup) as exc:
            raise Refusal(400, str(exc)) from None
        try:
            return await ReportBuilder(api.reader).build(subject, period, api.reader.clock())
        except BadQuery as exc:  # too large a read (api/stats.py ReadBudget)
            raise Refusal(400, str(exc)) from None

    return await _answer_report(api, report, fmt, request.app[SETTINGS].report_font)


async def _answer_report(api: StatsAPI, reading: Callable[[], Awaitable[dict]], fmt: str, font: str) -> web.Response:
    """The report in `fmt`, or the answer that refuses it (as /api/stats would)."""
    outcome = await api.guarded(reading)
    if isinstance(outcome, web.Response):
        return outcome
    try:
        body = await asyncio.to_thread(render, outcome, fmt, font)
    except FontMissing as exc:
        log.warning("report PDF: %s", exc)
        return web.json_response({"error": str(exc)}, status=503)
    return web.Response(body=body, content_type=MEDIA_TYPES[fmt], charset=None if fmt == "pdf" else "utf-8")


def build_report_job(app: web.Application, send=None) -> ReportJob:
    settings = app[SETTINGS]
    lease = Lease(app[REDIS], keys.REPORT_LEASE, ttl_seconds=3 * settings.report_interval)
    job_settings = ReportSettings(settings.report_interval, settings.data_dir, settings.report_font,
                                  settings.webhook_url, settings.webhook_secret)
    reader = StatsReader(app[REDIS], app[CALENDAR], app[CLOCK])
    return ReportJob(app[REDIS], reader, lease, job_settings, app[CLOCK], send)


async def report_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs the monthly report job while the app runs (report_interval 0: not at all)."""
    interval = app[SETTINGS].report_interval
    if interval <= 0:
        yield
        return
    sender = WebhookSender()
    job = build_report_job(app, sender)
    # No hurry after a start: the month waits, and a short-lived process never starts it.
    loop = Periodic("monthly-reports", job.tick, first_delay=min(300.0, interval))
    loop.start()
    yield
    await loop.close()
    try:
        await job.lease.release()
    except Exception as exc:  # Redis may be gone at shutdown; the lease then expires
        log.debug("reports: lease not released: %s", exc)
    await sender.close()
