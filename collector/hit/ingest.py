"""`/c`: hits in. Parse, validate, enrich, journal, count in memory — never await Redis.

Per request: the client IP, its region and the User-Agent are worked out once. Per
event: validation, device class (cached), the visitor hashes. Then the request's
accepted events are written to the journal in one write — before the answer, and
before they are counted, so a failed write counts nothing and answers 503.

While `holding` (the fast path sets it for the hits of a round of reads whose answers
wait for the round's end anyway, web/hit_server.py), a request's records are kept
instead, and `write_held` writes those of all the held requests in one write, then
counts them: one write(2) a round rather than one a hit. A request of more than
HOLD_MAX_RECORDS records (a batch of events) is written and counted at once instead: it
shares its write among its own events already, and held, its hits would sit in the garbage
collector's youngest generation until the round's end. The caller must not send a
held request's answer before write_held; when the write fails, none of them is counted
and each must be answered 503 instead (the answer Ingest gave assumed the write).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Final, cast

import orjson

from collector.enrich.device import Device, DeviceClassifier
from collector.enrich.geo import UNKNOWN_REGION, GeoResolver, Region
from collector.features.deep import USER_MARK, DeepCounter, DeepFacts
from collector.features.pages import language_of
from collector.hit.admission import OPEN, REASON_DETAILS, UNREGISTERED, Admission, Verdict, url_host
from collector.hit.caps import CardinalityCaps
from collector.hit.clientip import ClientIPResolver
from collector.hit.protocol import Problem, parse_body, query_event, usable_app_key, validate_event
from collector.hit.ratelimit import APP_LIMIT, REASONS, RateLimits
from collector.hit.record import NO_VISIT, Hit
from collector.hit.remarks import RecentIds, outside_window
from collector.hit.url_secrets import SecretStripper
from collector.hit.uvguard import SUSPECT_FLAGS, UID, VID, VISITOR, UvGuard
from collector.hit.visitors import VisitorHasher, VisitTracker, flag_from_ordinal
from collector.native import c_module
from collector.settings import Settings
from collector.store.aggregate import FLAGGED, Aggregator
from collector.store.buckets import Calendar
from collector.store.journal import Journal
from collector.store.names import CLIENT_CLOCK_FLAG, REPEATED_ID_FLAG
from collector.store.records import encode_hits, encode_reject

log = logging.getLogger(__name__)

UNKNOWN_APP: Final = "(unknown)"
# With registry=open: app keys remembered as counting (Ingest.apps_counted) before starting afresh.
OPEN_APPS_REMEMBERED = 100_000
# The smallest transparent GIF, for <img> beacons whose onload needs a real image.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
FUTURE_TOLERANCE: Final = 60  # seconds a client clock may run ahead and still choose the bucket
# Minutes whose int object Ingest keeps (_minute_object) before starting afresh: a day and
# more of them; a client clock may send others, each costs only its own entry.
MINUTES_KEPT: Final = 4096

# A visitor's keys under the day's and the month's salt, and the day and month bucket ids;
# one request's memo of them by (minute, ip, ua), and by (day, month, ip, ua) under it (see
# Ingest._visitor_keys).
VisitorKeys = tuple[bytes, bytes, str, str]
# The User-Agent a suspect visitor is hashed with (hit/uvguard.py): all the identities an
# address brings beyond the guard's threshold count as this one visitor of the address.
SUSPECT_UA = "\0suspect"
# While holding, a request of more records than this is journaled and counted at once, not
# held (module docstring): a held request keeps its Hits, their deep facts and tuples alive
# until the round's end, so the garbage collector's youngest generation fills with them and
# walks them: at POST-50 saturation five times as many gen-0 collections as the same hits in
# process, ~1.5 µs of the loop's CPU an event (bench/RESULTS.md, session 18), against a
# write(2) per request that a batch of events shares anyway.
HOLD_MAX_RECORDS: Final = 4


class Ingest:
    def __init__(
        self,
        settings: Settings,
        aggregator: Aggregator,
        geo: GeoResolver | None,
        devices: DeviceClassifier,
        hasher: VisitorHasher,
        calendar: Calendar,
        clock: Callable[[], float],
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.aggregator = aggregator
        self.geo = geo
        self.devices = devices
        self.ips = ClientIPResolver(settings.trusted_proxies, settings.geo_cache_size)
        self.hasher = hasher
        self.caps = CardinalityCaps(settings.cap_limits(), settings.value_max_chars)
        self.secrets = SecretStripper(settings.url_secret_params)
        self.deep = DeepCounter(self.caps)
        self.visits = VisitTracker(settings.session_timeout, settings.visit_tracker_visitors)
        self.calendar = calendar
        self.clock = clock
        self.admission = Admission(settings.registry)
        self.max_batch = settings.max_batch_events
        self.ts_window = settings.client_ts_window
        self.recent_ids = RecentIds(settings.recent_event_ids)
        self.dedupe = settings.dedupe_window > 0  # keep event ids: re-sent events are counted once
        self.limits = RateLimits(
            clock,
            client=(settings.rate_client, settings.rate_client_burst),
            address=(settings.rate_address, settings.rate_address_burst),
            app=(settings.rate_app, settings.rate_app_burst),
            max_clients=settings.rate_limit_clients,
        )
        self.uv_guard = (
            UvGuard(settings.uv_guard_per_minute, settings.uv_guard_identities) if settings.uv_guard_per_minute else None
        )
        # With `registry=open`, the app keys this worker counted events of lately: only their
        # rejections are counted under them (a made-up key that never sends a valid event
        # creates no keys of its own; its rejections go to (unknown)). Bounded: started
        # afresh past OPEN_APPS_REMEMBERED.
        self.apps_counted: set[str] = set()
        # Each minute's value as one int object (_minute_object).
        self._minutes: dict[int, Any] = {}
        # The last one _minute_object gave, and its value: a request's events, and the
        # requests of a minute, mostly ask for it again (None: none given yet).
        self._last_minute = 0
        self._last_minute_object: Any = None
        self.cors = {
            "Access-Control-Allow-Origin": settings.cors_origin,
            "Cache-Control": "no-store",
        }
        # The journal group (module docstring): while holding, _commit keeps its records
        # and tallies here until write_held.
        self.holding = False
        self._held_records: list[bytes] = []
        self._held_tallies: list[Tally] = []

    # ---- handlers --------------------------------------------------------------------
    # Transport-neutral: web/hit_routes.py adapts them to aiohttp, web/hit_server.py to its fast path.
    # `peer` is the TCP peer's address; the other arguments are the request's headers.

    def hit_body(
        self, body: bytes | None, peer: str | None, forwarded_for: str | None, ua: str, ch_mobile: str | None,
        origin: str | None = None, referer: str | None = None,
    ) -> Answer:
        """A POST: one event or a batch as JSON. `body` is None when it was over max_body_bytes."""
        refusal = self._cannot_take()
        if refusal is not None:
            return refusal
        now = self.clock()
        ip = self.ips.client_ip(peer, forwarded_for)
        limited = self._client_limited(ip, ua, now)
        if limited is not None:
            return limited
        if body is None:
            problem = Problem(None, None, "body_too_large", f"body over {self.settings.max_body_bytes} bytes")
            return self._reject_request(problem, now, status=413)
        try:
            payload = parse_body(body) if body else None
        except ValueError as exc:
            return self._reject_request(Problem(None, None, "malformed_json", str(exc)[:200]), now)
        events = payload if isinstance(payload, list) else [payload] if payload is not None else []
        if not events:
            return self._reject_request(Problem(None, None, "empty_batch", "no events in the body"), now)
        self.limits.spend_client(ip, ua, min(len(events), self.max_batch))
        tally = self._process(ip, ua, ch_mobile, events, now, self.admission.page_host(origin, referer))
        if tally.limited is not None:
            return self._refused(tally.rejects, tally.limited)
        if not self._commit(tally):
            return self._unavailable()
        return self._answer(len(events), tally.problems)

    def hit_query(
        self, query: dict[str, Any], peer: str | None, forwarded_for: str | None, ua: str, ch_mobile: str | None,
        origin: str | None = None, referer: str | None = None, clean: bool = False, valid: bool = False,
    ) -> Answer:
        """A GET pixel: one event in the (decoded) query parameters; `query` becomes the
        event (protocol.query_event): the caller does not keep it. `clean`: `query` is that
        event already (protocol.decode_target_event said so), query_event is skipped;
        `valid`: and its fields are within their rules, validate_event's walk is skipped."""
        refusal = self._cannot_take()
        if refusal is not None:
            return refusal
        now = self.clock()
        ip = self.ips.client_ip(peer, forwarded_for)
        limited = self._client_limited(ip, ua, now)
        if limited is not None:
            return limited  # to an image beacon too: onerror keeps the event for later
        event, problems = (query, []) if clean else query_event(query)
        wants_image = event.pop("img", None) == "1"
        if problems:
            app = self._app_of(event, now, counted=self.apps_counted)
            tally = Tally(rejects=[(app, minute_of(now), p.counter) for p in problems], problems=problems)
        else:
            tally = self._process(ip, ua, ch_mobile, [event], now, self.admission.page_host(origin, referer), valid)
        if tally.limited is not None:
            return self._refused(tally.rejects, tally.limited)
        if not self._commit(tally):
            return self._unavailable()
        if wants_image:
            # An image beacon cannot read a 400 anyway; the rejection is counted.
            return IMAGE
        return self._answer(1, tally.problems)

    def preflight(self) -> Answer:
        return PREFLIGHT

    # ---- per event ----------------------------------------------------------------

    def _process(
        self, ip: str, ua: str, ch_mobile: str | None, events: list[Any], now: float, origin_host: str = "",
        fields_valid: bool = False,
    ) -> Tally:
        """The request's events from client `ip` (hit/clientip.py): what to count, reject and
        answer. `fields_valid`: each event's fields are known to be within their rules
        (protocol.validate_event)."""
        minute = minute_of(now)
        if self.limits.app is not None:
            limited = self._app_limited(events[: self.max_batch], now, minute)
            if limited is not None:
                return limited
        if self.uv_guard is not None:
            self.uv_guard.at(minute)
        region = self.geo.lookup(ip) if self.geo else UNKNOWN_REGION
        tally = Tally()
        # One event (a GET): nothing to share with, so no memo to fill.
        memo: VisitorMemo | None = VisitorMemo() if len(events) > 1 else None
        devices: DeviceMemo | None = DeviceMemo() if len(events) > 1 else None
        checked_key = ""  # the app key of the last valid event: a batch's events share it
        # The verdict on the last event admitted, and the page URL it was judged with: an
        # event of the same key and URL (a batch's events share the key, and most name no
        # URL) takes it as is. judge answers alike for them — nothing it reads changes
        # during one request, `now` included — and a counted verdict changes nothing but
        # caches (a refusal does: it is remembered, so a refused event is always judged).
        judged: Verdict | None = None
        judged_url = ""
        for index, event in enumerate(events):
            if index >= self.max_batch:
                tally.problems.append(Problem(index, None, "batch_too_large", f"more than {self.max_batch} events"))
                tally.rejects.append((self._app_of(event, now), minute, "batch_too_large"))
                continue
            found = validate_event(event, index, checked_key, fields_valid)
            if found:
                tally.problems.extend(found)
                app = self._app_of(event, now)
                tally.rejects.extend((app, minute, problem.counter) for problem in found)
                continue
            # Valid: a dict with a text app key. Typed as such, compiled code reads its
            # fields with dict calls, not generic item and method look-ups of an object.
            valid: dict[str, Any] = event
            key: str = valid["k"]
            url: str = valid.get("u", "")
            verdict = judged
            if verdict is None or key != checked_key or url != judged_url:
                verdict = self.admission.judge(key, origin_host, url, now)
            checked_key = key
            if verdict.refused:
                tally.problems.append(Problem(index, None, verdict.refused, REASON_DETAILS[verdict.refused]))
                tally.rejects.append((verdict.app, minute, verdict.refused))
                judged = None
                continue
            judged, judged_url = verdict, url
            if verdict.flagged:
                tally.rejects.append((verdict.app, minute, FLAGGED + verdict.flagged))
            # An event's id and re-send mark, read once for _remark and _enrich.
            event_id: str = valid.get("id", "")
            resent: int = valid.get("re", 0)
            when = self._remark(valid, verdict.app, minute, now, tally.rejects, event_id, resent)
            tally.counts.append(self._enrich(
                valid, verdict.app, ip, ua, ch_mobile, region, when, memo, tally.rejects, devices, event_id, resent))
        if self.admission.mode == OPEN and tally.rejects:
            counted = {hit.app for hit in tally.counts}
            tally.rejects = [
                (app if app in counted or app in self.apps_counted else UNKNOWN_APP, m, why)
                for app, m, why in tally.rejects
            ]
        return tally

    # ---- rate limits (hit/ratelimit.py) -------------------------------------------

    def _client_limited(self, ip: str, ua: str, now: float) -> Answer | None:
        """429 when this client, or its address, is over its rate (before the request is
        read: its events are neither parsed nor counted), else None. The refusal is
        counted once per request, under the pseudo-app of requests without an app."""
        reason, wait = self.limits.refuse_client(ip, ua, now)
        if not reason:
            return None
        self.aggregator.reject(self._no_app(), minute_of(now), reason)
        return rate_limited(reason, wait)

    def _app_limited(self, events: list[Any], now: float, minute: int) -> Tally | None:
        """A tally refused whole (429) when an app key of the request is over its rate, else None.

        Whole: a batch is counted all or not at all, so that the beacon's re-send of it is
        exact. Its events are refused under their app, one rejected:rate_limited_app each.
        """
        for key, count in _events_per_key(events):
            wait = self.limits.refuse_app(key, count, now)
            if wait:
                app = self._app_of({"k": key}, now)
                return Tally(rejects=[(app, minute, APP_LIMIT)] * count, limited=rate_limited(APP_LIMIT, wait))
        return None

    def _refused(self, rejects: list[tuple[str, int, str]], answer: Answer) -> Answer:
        """Count a refused request's rejections — in memory only: journaling a flood that is
        refused would cost it a disk write per request (a lost count of refusals after a
        crash is the price) — and answer `answer` (429)."""
        for args in rejects:
            self.aggregator.reject(*args)
        return answer

    def _remark(
        self, event: dict[str, Any], app: str, minute: int, now: float, rejects: list[tuple[str, int, str]],
        event_id: str, resent: int,
    ) -> float:
        """The daily validation's flags on an accepted event (hit/remarks.py; it still
        counts), and the moment it counts at: its client timestamp when that lies within
        the window, else `now` — the clock is judged once, here, for both.

        Flagged: a client clock outside that window; an id this worker saw lately (a
        resend, or ids that are not unique). `event_id` and `resent` are the event's `id`
        and `re` ("" and 0 when it has none).
        """
        when = now
        # Typed as their rules have them (the event is valid: validate_event): compiled code
        # then works on a C integer and a str, not on objects of any type.
        ts: int | None = event.get("ts")
        if ts is not None:
            if outside_window(ts, now, self.ts_window, FUTURE_TOLERANCE):
                rejects.append((app, minute, FLAGGED + CLIENT_CLOCK_FLAG))
            else:
                when = ts / 1000
        # A re-send says what it is (re=1) and is counted once (store/dedupe.py): no remark.
        if event_id and not resent and self.recent_ids.seen(app, event_id):
            rejects.append((app, minute, FLAGGED + REPEATED_ID_FLAG))
        return when

    def _app_of(self, event: object, now: float, counted: Collection[str] | None = None) -> str:
        """The app a rejection is counted under: with `registry=open` its app key when that
        key is usable (and, given `counted`, among the apps the request counted events of),
        else (unknown); when enforcing, see Admission.rejects_app."""
        key = event.get("k") if isinstance(event, dict) else None
        if self.admission.mode == OPEN:
            return key if usable_app_key(key) and (counted is None or key in counted) else UNKNOWN_APP
        return self.admission.rejects_app(key, now)

    def _visitor_keys(self, minute: int, ip: str, ua: str, memo: VisitorMemo | None) -> VisitorKeys:
        """The visitor's keys under the day's and the month's salt, and the day and month.

        Also a logged-in user's keys: (USER_MARK + app, uid) in place of (IP, User-Agent): a
        user id means something on its own platform only, unlike an IP and a device.

        With `memo` (a request's), hashed once per day and month: a batch's events span two
        or three minutes (client timestamps) and may name several apps, and the keys depend
        on neither — the same objects for all of them, which DeepCounter's scope and the UV
        guard then find by identity.
        """
        if memo is None:
            _, _, day, month = self.calendar.buckets_of_minute(minute)
            visitor, month_visitor = self.hasher.day_and_month(day.id, month.id, ip, ua)
            return (visitor, month_visitor, day.id, month.id)
        found = memo.keys.get((minute, ip, ua))
        if found is None:
            _, _, day, month = self.calendar.buckets_of_minute(minute)
            found = memo.keys.get((day.id, month.id, ip, ua))
            if found is None:
                visitor, month_visitor = self.hasher.day_and_month(day.id, month.id, ip, ua)
                found = memo.keys[(day.id, month.id, ip, ua)] = (visitor, month_visitor, day.id, month.id)
            memo.keys[(minute, ip, ua)] = found
        return found

    def _enrich(
        self, ev: dict[str, Any], app: str, ip: str, ua: str, ch_mobile: str | None, region: Region, when: float,
        memo: VisitorMemo | None = None, flags: list[tuple[str, int, str]] | None = None,
        devices: DeviceMemo | None = None, event_id: str = "", resent: int = 0,
    ) -> Hit:
        """The record of one valid event, counted under `app` (the platform's series,
        admission.py) at `when` (see _remark): what the journal writes and the aggregator counts.

        `memo` carries the visitor keys across the events of one request: they share IP
        and User-Agent, so a 50-event batch hashes once a day, not once an event. `flags`
        gets the UV guard's flags (see _guarded); `devices` carries the devices (_device).
        `event_id` and `resent`: the event's `id` and `re` (_process reads them once), kept
        when deduplicating.
        """
        etype: str = ev["t"]  # (typed: compared below as str, not as objects)
        minute = minute_of(when)
        minute_object = self._minute_object(minute)
        device, is_bot = self._device(ua, ch_mobile, ev, devices)
        if memo is not None and memo.minute == minute:
            keys = memo.last  # the event before's: the same minute, address and User-Agent
        else:
            keys = self._visitor_keys(minute, ip, ua, memo)
            if memo is not None:
                memo.minute, memo.last = minute, keys
        vid: str = ev.get("vid", "")
        uid: str | None = ev.get("uid")
        if self.uv_guard is not None and not is_bot:
            keys, vid, uid = self._guarded(app, minute, ip, keys, vid, uid, memo, flags)
        visitor, month_visitor, day, _ = keys
        deep = None
        if not is_bot:
            user = self._visitor_keys(minute, USER_MARK + app, uid, memo)[:2] if uid else None
            deep = self.deep.facts(ev, app, day, visitor, month_visitor, user)
        if not self.dedupe:  # the ids are kept only when deduplicating (store/dedupe.py)
            event_id = ""
            resent = 0
        if is_bot:
            device = self._capped_bot(device, app, day)
        if etype == "pageview":
            url = self.secrets.strip(ev["u"])
            sn = ev.get("sn")
            if is_bot:
                flag = NO_VISIT
            elif sn is not None:
                flag = flag_from_ordinal(sn)
            else:
                flag = self.visits.visit_flag(visitor, when)
            return _hit(
                app=app, minute=minute_object, etype=etype, device=device, region=region, visitor=visitor,
                month_visitor=month_visitor, first_party_id=vid, deep=deep,
                page=self.caps.admit("page", app, day, page_of(url)),
                page_code=self.caps.admit("page_code", app, day, ev.get("pc", "")),
                referrer=self.caps.admit("referrer", app, day, referrer_value(ev.get("r", ""), url)),
                visit_flag=flag, lang=language_of(ev.get("lang")),
                event_id=event_id, resent=resent,
            )
        if etype == "engagement":
            return _hit(
                app=app, minute=minute_object, etype=etype, device=device, region=region, visitor=visitor,
                month_visitor=month_visitor, first_party_id=vid, deep=deep,
                engaged_ms=ev["et"], scroll=ev.get("sd", -1), event_id=event_id, resent=resent,
            )
        return _hit(
            app=app, minute=minute_object, etype=etype, device=device, region=region, visitor=visitor,
            month_visitor=month_visitor, first_party_id=vid, deep=deep, event_id=event_id, resent=resent,
        )

    def _minute_object(self, minute: int) -> Any:
        """`minute` as the one int object this Ingest gives every hit of that minute. An int
        past 256 is a new object each time it is made (and compiled code makes one each
        time it puts a minute into a tuple), so the aggregator's keys of one minute held
        equal but distinct ints: every lookup that found its key compared them by value,
        reading the stored one from memory. With one object they compare by identity, and
        the aggregator puts the hit's own object into its keys (store/aggregate.py).

        The last minute given is compared first, as a C integer: the dict lookup boxes
        `minute` into a new int object and hashes it (~440 instructions an event of a
        POST-50 request, bench/RESULTS.md session 23)."""
        if minute == self._last_minute and self._last_minute_object is not None:
            return self._last_minute_object
        found = self._minutes.get(minute)
        if found is None:
            if len(self._minutes) >= MINUTES_KEPT:
                self._minutes.clear()
            self._minutes[minute] = minute
            found = self._minutes[minute]  # the object kept (compiled code boxes `minute` anew at each use)
        self._last_minute, self._last_minute_object = minute, found
        return found

    def _device(self, ua: str, ch_mobile: str | None, ev: dict[str, Any], memo: DeviceMemo | None) -> tuple[Device, bool]:
        """The event's device and whether it is a bot. With `memo`, classified once per
        screen of the request: classify is a compiled call (enrich/device.py), is_bot a property."""
        sw, sh, tp = ev.get("sw", 0), ev.get("sh", 0), ev.get("tp", 0)
        if memo is None:
            device = self.devices.classify(ua, ch_mobile, sw, sh, tp)
            return device, device.is_bot
        # Valid, so ints (validate_event): compared as C integers with the last event's screen,
        # which nearly every event of a batch shares; the dict is asked only on a change.
        width: int = sw
        height: int = sh
        touch: int = tp
        last = memo.last
        if last is not None and width == memo.width and height == memo.height and touch == memo.touch:
            return last
        screen = (width, height, touch)
        found = memo.screens.get(screen)
        if found is None:
            device = self.devices.classify(ua, ch_mobile, sw, sh, tp)
            found = memo.screens[screen] = (device, device.is_bot)
        memo.width, memo.height, memo.touch, memo.last = width, height, touch, found
        return found

    def _guarded(
        self, app: str, minute: int, ip: str, keys: VisitorKeys, vid: str, uid: str | None,
        memo: VisitorMemo | None, flags: list[tuple[str, int, str]] | None,
    ) -> tuple[VisitorKeys, str, str | None]:
        """The UV guard (hit/uvguard.py) on a hit's visitor, vid and uid: a suspect one
        is set aside — the visitor becomes the address's one suspect visitor, the vid
        and uid are dropped — and the hit flagged flagged:suspect_KIND. It still counts."""
        suspects = cast(UvGuard, self.uv_guard).suspects(ip, keys[0], vid, uid)  # set: _enrich calls this only then
        if not suspects:
            return keys, vid, uid
        if VISITOR in suspects:
            keys = self._visitor_keys(minute, ip, SUSPECT_UA, memo)
        if VID in suspects:
            vid = ""
        if UID in suspects:
            uid = None
        if flags is not None:
            flags.extend((app, minute, FLAGGED + SUSPECT_FLAGS[kind]) for kind in suspects)
        return keys, vid, uid

    def _remember_counting(self, hits: list[Hit]) -> None:
        if len(self.apps_counted) > OPEN_APPS_REMEMBERED:
            self.apps_counted.clear()
        self.apps_counted.update(hit.app for hit in hits)

    def _capped_bot(self, device: Device, app: str, day: str) -> Device:
        """A bot's device, its name (the `bot` breakdown's value) capped like any value."""
        name = self.caps.admit("bot", app, day, device.browser)
        return device if name == device.browser else device._replace(browser=name)

    def _commit(self, tally: Tally) -> bool:
        """Journal, then count. False when the journal could not take it (nothing counted).

        While holding: the records are kept for write_held, which journals and counts
        them; True here means only "held" (module docstring)."""
        if self.journal and (tally.counts or tally.rejects):
            records = encode_hits(tally.counts)  # a line a request, not a hit
            records += [encode_reject(*args) for args in tally.rejects]
            if self.holding and len(tally.counts) + len(tally.rejects) <= HOLD_MAX_RECORDS:
                self._held_records += records
                self._held_tallies.append(tally)
                return True
            if not self._journal(records):
                return False
        self._count(tally)
        return True

    @property
    def held(self) -> int:
        """The requests held since the last write_held."""
        return len(self._held_tallies)

    def write_held(self) -> bool:
        """Journal the held requests' records in one write, then count them. False when
        the write failed: none of them is counted (each must be answered 503)."""
        records, tallies = self._held_records, self._held_tallies
        if not tallies:
            return True
        self._held_records, self._held_tallies = [], []
        if not self._journal(records):
            return False
        for tally in tallies:
            self._count(tally)
        return True

    def _journal(self, records: list[bytes]) -> bool:
        try:
            cast(Journal, self.journal).append(b"".join(records))  # cast: called only with a journal
        except OSError as exc:
            log.error("journal write failed: %s", exc)
            return False
        return True

    def _count(self, tally: Tally) -> None:
        """Count a journaled tally (or any, without a journal) in the aggregator."""
        # Called as methods of the aggregator, not as bound methods taken once: compiled,
        # a method call is a direct C call, where a bound method is called through its
        # argument-parsing wrapper (per event).
        aggregator = self.aggregator
        for hit in tally.counts:
            aggregator.count(hit)
        if self.admission.mode == OPEN and tally.counts:
            self._remember_counting(tally.counts)
        for app, minute, reason in tally.rejects:
            aggregator.reject(app, minute, reason)

    # ---- answers ------------------------------------------------------------------

    def _answer(self, total: int, problems: list[Problem]) -> Answer:
        if not problems:
            return ACCEPTED
        rejected = len({p.event for p in problems})
        body = {"accepted": total - rejected, "rejected": rejected, "errors": [p.as_json() for p in problems]}
        return Answer(400, orjson.dumps(body), JSON)

    def _no_app(self) -> str:
        """The app a rejection of a whole request (no app key read) is counted under."""
        return UNKNOWN_APP if self.admission.mode == OPEN else UNREGISTERED

    def _reject_request(self, problem: Problem, now: float, status: int = 400) -> Answer:
        if not self._commit(Tally(rejects=[(self._no_app(), minute_of(now), problem.counter)])):
            return self._unavailable()
        body = {"accepted": 0, "rejected": 1, "errors": [problem.as_json()]}
        return Answer(status, orjson.dumps(body), JSON)

    def _cannot_take(self) -> Answer | None:
        """The answer for a hit that cannot be taken at all, before it is even read: no
        room to keep it (503), or the registry not loaded yet (503, registry_loading)."""
        if self._full():
            return self._unavailable()
        if self.admission.waiting:
            return REGISTRY_LOADING
        return None

    def _full(self) -> bool:
        """No room to keep more hits: the journal's disk budget is used up or, with the
        journal off, the batches waiting for Redis fill their memory budget."""
        return (self.journal is not None and self.journal.full) or self.aggregator.refusing

    def _unavailable(self) -> Answer:
        """503: Redis has been away (or slow) so long that the journal's disk budget, or
        with the journal off the memory budget (memory_max_cells), is used up.

        Nothing of the request was counted; the beacon keeps the events and retries.
        """
        return UNAVAILABLE


@dataclass(frozen=True, slots=True)
class Answer:
    """What a hit is answered with, whichever HTTP layer sends it.

    Every answer also carries `Ingest.cors` (CORS and no-store headers).
    """

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # beyond the CORS headers


JSON = "application/json"
ACCEPTED = Answer(204)
IMAGE = Answer(200, PIXEL_GIF, "image/gif")
PREFLIGHT = Answer(204, headers=(
    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type"),
    ("Access-Control-Max-Age", "86400"),
))
# Enforcing the registry before this worker could load it (Redis away since the start):
# nothing was counted; the beacon keeps the events and retries.
REGISTRY_LOADING = Answer(
    503,
    orjson.dumps({"error": "registry_loading", "detail": "the collector has not loaded the platform registry yet"}),
    JSON,
    (("Retry-After", "5"),),
)
UNAVAILABLE = Answer(
    503,
    orjson.dumps({"error": "journal_full", "detail": "the collector cannot store more hits until Redis is back"}),
    JSON,
    (("Retry-After", "30"),),
)


# 429 answers, by reason and Retry-After: a few fixed ones, so that hit_server.py sends
# them from its cache (refusing a flood must cost little). Retry-After is the wait
# rounded up to one of RETRY_STEPS.
RETRY_STEPS = (1, 2, 5, 10, 30, 60)
RATE_LIMITED = {
    (reason, seconds): Answer(
        429,
        orjson.dumps({"error": reason, "detail": "too many events from this sender: send them later", "retry_after": seconds}),
        JSON,
        (("Retry-After", str(seconds)),),
    )
    for reason in REASONS for seconds in RETRY_STEPS
}


# 2**53: every float below it that has no fraction is an exact integer (minute_of).
_EXACT_INTEGERS: Final = 9007199254740992.0


def minute_of(moment: float) -> int:
    """int(moment // 60): the minute of a moment in seconds since the epoch, without a
    float floor division where it is not needed (CPython's and mypyc's call fmod: ~230
    instructions an event, bench/RESULTS.md session 22). For 0 <= moment < 2**53 the two are
    equal: int(moment) is floor(moment), floor(floor(x) / 60) is floor(x / 60), and float //
    is exactly floor(x / 60) there (its fmod and subtraction are exact: 60 * k <= x < 2**53).
    Any other moment (negative, huge, nan, inf) takes the float division: its answer, or its
    error. tests/test_minute_of.py holds the two together."""
    if 0.0 <= moment < _EXACT_INTEGERS:
        return int(moment) // 60
    return int(moment // 60)


def rate_limited(reason: str, wait: float) -> Answer:
    """The 429 answer for `reason` and a wait of `wait` seconds."""
    seconds = next((step for step in RETRY_STEPS if step >= wait), RETRY_STEPS[-1])
    return RATE_LIMITED[(reason, seconds)]


class VisitorMemo:
    """One request's visitor keys (Ingest._visitor_keys): in `keys` by (minute, ip, ua), and
    by (day, month, ip, ua) under it; and the last event's, of `minute`, as they are — an
    event of the same minute as the event before takes them without a lookup (_enrich)."""

    __slots__ = ("keys", "minute", "last")

    def __init__(self) -> None:
        self.keys: dict[tuple[Any, ...], VisitorKeys] = {}
        self.minute = -1  # no event's
        self.last: VisitorKeys = (b"", b"", "", "")


class DeviceMemo:
    """One request's devices (Ingest._device), with whether each is a bot: in `screens` by
    the event's screen (sw, sh, tp), and the last event's, of the screen `width`, `height`,
    `touch`, as it is. A request's events share the User-Agent and nearly always the screen,
    so a batch classifies once, and an event of the screen of the event before takes its
    device without making a tuple of its screen and looking it up."""

    __slots__ = ("screens", "width", "height", "touch", "last")

    def __init__(self) -> None:
        self.screens: dict[tuple[int, int, int], tuple[Device, bool]] = {}
        self.width = self.height = self.touch = -1  # no event's: a screen's are >= 0
        self.last: tuple[Device, bool] | None = None


class Tally:
    """What one request adds: hits to count, rejections, and the problems to answer.

    A plain class, not a dataclass: mypyc leaves a dataclass's generated __init__ to the
    dataclasses module, an interpreted call on every request (bench/RESULTS.md, session 12);
    this one it compiles."""

    __slots__ = ("counts", "rejects", "problems", "limited")

    def __init__(
        self, counts: list[Hit] | None = None, rejects: list[tuple[str, int, str]] | None = None,
        problems: list[Problem] | None = None, limited: Answer | None = None,
    ) -> None:
        self.counts: list[Hit] = [] if counts is None else counts
        self.rejects: list[tuple[str, int, str]] = [] if rejects is None else rejects  # (app, minute, reason)
        self.problems: list[Problem] = [] if problems is None else problems
        self.limited = limited  # a 429: the request is refused whole (rate limits), nothing counted


def _tuple_of(cls: type[Hit], *items: Any) -> Hit:
    """tuple.__new__(cls, items): hit/_tuple_new.c's tuple_of, in Python (when it is not built)."""
    return tuple.__new__(cls, items)


def _tuple_new() -> Callable[..., Hit]:
    """hit/_tuple_new.c's `tuple_of` when built, else _tuple_of: `cls` made of the items
    passed after it, without the type call's machinery (~950 instructions a hit through
    tuple.__new__, bench/RESULTS.md, session 20), nor a tuple of the items made and freed
    again for each hit (compiled code passes them on its stack: session 23)."""
    module = c_module("collector.hit._tuple_new")
    return cast(Callable[..., Hit], _tuple_of if module is None else module.tuple_of)


_new_tuple: Final = _tuple_new()
# Hit as a Final: compiled code keeps it in a C variable; an imported name is looked up in
# the module's dict at each use (~130 instructions a hit, bench/RESULTS.md, session 21).
_HIT: Final[type[Hit]] = Hit


def _hit(
    app: str, minute: Any, etype: str, device: Device, region: Region, visitor: bytes, month_visitor: bytes, *,
    page: str = "", page_code: str = "", referrer: str = "", visit_flag: int = NO_VISIT, engaged_ms: int = 0,
    scroll: int = -1, first_party_id: str = "", deep: DeepFacts | None = None, lang: str = "", event_id: str = "",
    resent: int = 0,
) -> Hit:
    """Hit(...), made without a Python frame: Hit's own __new__ (NamedTuple's) is Python,
    called once per event, where this compiled function takes its keywords in C and
    _new_tuple is C. Its parameters are Hit's fields, in Hit's order, with Hit's
    defaults (tests/test_ingest.py checks both). `minute` is an int, typed Any so that the
    object given (Ingest._minute_object) is the one the Hit holds, not a copy made by
    compiled code's unboxing and boxing."""
    return _new_tuple(
        _HIT, app, minute, etype, device, region, visitor, month_visitor, page, page_code, referrer, visit_flag,
        engaged_ms, scroll, first_party_id, deep, lang, event_id, resent,
    )


def _events_per_key(events: list[Any]) -> Iterable[tuple[str, int]]:
    """(app key, events) of a request's events with a text app key (the others are
    rejected anyway: missing_field, wrong_type). Mostly one key: a page's events share it."""
    if len(events) == 1:  # a GET, or a one-event POST: no dict
        key = events[0].get("k") if isinstance(events[0], dict) else None
        return ((key, 1),) if isinstance(key, str) else ()
    per_key: dict[str, int] = {}
    # Counted by runs of one key, added to per_key when the key changes (in the order the
    # keys first come, as before): no dict lookup per event.
    run_key: str | None = None
    run = 0
    for event in events:
        key = event.get("k") if isinstance(event, dict) else None
        if not isinstance(key, str):
            continue
        if key == run_key:
            run += 1
            continue
        if run_key is not None:
            per_key[run_key] = per_key.get(run_key, 0) + run
        run_key, run = key, 1
    if run_key is not None:
        per_key[run_key] = per_key.get(run_key, 0) + run
    return per_key.items()


def page_of(url: str) -> str:
    """The page dimension: the URL without its fragment — unless the fragment is a route.

    Hash-routed single-page apps (`#/course/1`, `#!/course/1`) keep their route, or all
    their pages would count as one.
    """
    base, sep, fragment = url.partition("#")
    if sep and fragment[:1] in ("/", "!"):
        return url
    return base


def referrer_value(referrer: str, page: str) -> str:
    """The referrer dimension: its host, '(direct)' or '(internal)' (same host as the page)."""
    host = url_host(referrer)
    if not host:
        return "(direct)"
    return "(internal)" if host == url_host(page) else host
