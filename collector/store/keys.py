"""The Redis key schema. Every key name the collector reads or writes is built here.

Layout (documented for downstream jobs in docs/redis-keys.md):

    eb:{APP|DAY}:GRAN:BUCKET:c              hash   counters (pv, visits, ...)
    eb:{APP|DAY}:GRAN:BUCKET:d:DIM          hash   PV per value of a dimension
    eb:{APP|DAY}:GRAN:BUCKET:u              HLL    UV (keyed hash of IP + UA)
    eb:{APP|DAY}:GRAN:BUCKET:u:fp           HLL    first-party visitor ids
    eb:{APP|DAY}:GRAN:BUCKET:u:DIM:VALUE    HLL    UV per device class / region
    eb:{APP|DAY}:GRAN:BUCKET:m:DIM          hash   deep-tag metrics per value: METRIC:VALUE
    eb:{APP|DAY}:GRAN:BUCKET:u:media        HLL    visitors who played or read a resource
    eb:{APP|DAY}:GRAN:BUCKET:u:users        HLL    logged-in users (keyed hash of the uid)
    eb:{APP|DAY}:GRAN:BUCKET:rs             HLL    distinct resources viewed
    eb:{APP|DAY}:GRAN:BUCKET:rs:DIM:VALUE   HLL    distinct resources viewed per type/subject/...
    eb:{APP|DAY}:sessions                   hash   media session -> progress counted so far
    eb:{APP|DAY}:seq:WRITER                 string last flush sequence applied by a writer
    eb:{APP|DAY}:migrating                  (none) never written: holds a flush off a migrating slot
    eb:{APP|DAY}:cap:KIND                   set    the values of a capped kind counted as themselves that day
    eb:salt:DAY                             string the day's visitor-hash salt (48 h)
    eb:catalogue:{APP}                      hash   uploaded resource counts per DIM:VALUE
    eb:apps                                 set    every app key seen
    eb:{registry}:platforms                 hash   platform id -> its record (JSON)
    eb:{registry}:app-keys                  hash   app key (current or retired) -> platform id
    eb:{registry}:pending                   set    ids of platforms waiting for approval
    eb:{registry}:version                   string bumped by every registry change
    eb:{registry}:audit                     stream who changed what, when (capped)
    eb:{registry}:admin-tokens              hash   SHA-256 of an admin token -> its name (JSON)
    eb:{registry}:groups                    hash   named set of platforms -> its record (JSON)
    eb:{hll:TOKEN}:N                        string a HyperLogLog copied for a cross-slot union (60 s)
    eb:{report}:lease                       string the token of the process running the monthly reports
    eb:{report}:done                        hash   month -> when its reports were written and sent
    eb:{health}:platforms                   hash   platform id -> its health record (JSON)
    eb:{health}:history:ID                  list   a platform's health transitions, newest first (capped)
    eb:{health}:anomalies                   hash   anomaly id -> the anomaly and its delivery (JSON)
    eb:{health}:anomaly-times               zset   anomaly id, scored by when it was detected
    eb:{health}:outbox                      zset   anomaly ids waiting for the webhook, scored by next attempt
    eb:{health}:job                         hash   the health job's bookkeeping (last run, runs per holder)
    eb:{health}:lease                       string the token of the collector process running the job
    eb:{finality}:watermarks                hash   writer -> watermark: all it acknowledged before is in Redis
    eb:{finality}:firsts                    hash   writer -> the same for first sends (re-sent events held aside)
    eb:{finality}:writers                   zset   live writers, scored by the end of their liveness
    eb:{finality}:touched:GRAN              zset   BUCKET:APP that received counts, scored by the bucket's end
    eb:{finality}:cursor                    hash   granularity -> buckets ending by then were announced
    eb:{finality}:closed                    stream app, granularity, bucket of each bucket that became final
    eb:{finality}:lease                     string the token of the process that announces
    eb:{APP|DAY}:ids:SLICE                  set    ids of the first sends flushed in one minute (dedupe of re-sent events)
    eb:{APP|DAY}:id:EVENT                   string a re-sent event id admitted lately: the admitting batch's token

GRAN is minute, hour, day or month and BUCKET its id (202611241530, 2026112415,
20261124, 202611). The `{...}` part is the Redis Cluster hash tag: every key of one app
and one local day lives in one slot, so one flush script touches one slot. Month keys
span days, so they carry the tag {APP|MONTH} instead. The registry's keys share the
tag {registry}, so a registry change is one transaction in one slot; the health job's
keys share {health}, for the same reason.
"""

from __future__ import annotations

from typing import Final

PREFIX = "eb"

# Expiry of the per-writer flush sequence markers (seconds). A writer that has been
# gone for a week will not retry anything older.
SEQ_MARKER_TTL = 7 * 86400
# A day's salt is deleted 48 h after the day starts: late events (offline queues)
# arrive up to a day after their day ends, and no visitor can be followed beyond that.
SALT_LIFETIME = 48 * 3600

APPS = f"{PREFIX}:apps"

# The page-view dimensions (…:d:DIM, and …:u:DIM:VALUE for those with UV) are the
# table in features/pages.py DIMENSIONS; this module builds their keys from a name.


def slot_tag(app: str, granularity: str, bucket_id: str) -> str:
    """The hash tag shared by the keys of one app and day (or month)."""
    period = bucket_id if granularity == "month" else bucket_id[:8]
    return "{" + app + "|" + period + "}"


# The part of a bucket key after the bucket: the rollup builder works with these
# suffixes per minute and joins them to each bucket's prefix once per key.
COUNTERS: Final = "c"
VISITORS: Final = "u"
FIRST_PARTY: Final = "u:fp"
MEDIA_VIEWERS: Final = "u:media"
USERS: Final = "u:users"
RESOURCES: Final = "rs"

# The deep-tag dimensions with a metrics hash (…:m:DIM, fields METRIC:VALUE) and the
# metric names are in names.py.


def metrics_suffix(dim: str) -> str:
    return "m:" + dim


def metric_field(metric: str, value: str) -> str:
    """A field of a metrics hash; metric names hold no ':', so the first one splits."""
    return metric + ":" + value


def resources_suffix(dim: str, value: str) -> str:
    return "rs:" + dim + ":" + value


def dimension_suffix(dim: str) -> str:
    return "d:" + dim


def dimension_visitors_suffix(dim: str, value: str) -> str:
    return "u:" + dim + ":" + value


def valued_suffix_parts(suffix: str) -> tuple[str, str] | None:
    """(DIM, VALUE) of a suffix that names a value — u:DIM:VALUE (dimension_visitors_suffix)
    or rs:DIM:VALUE (resources_suffix) — else None. Dimension names hold no ':'."""
    head, sep, rest = suffix.partition(":")
    if head not in ("u", "rs") or not sep:
        return None
    dim, sep, value = rest.partition(":")
    return (dim, value) if sep else None


def with_value(suffix: str, value: str) -> str:
    """A valued suffix (valued_suffix_parts) naming `value` instead of its own."""
    head, _, rest = suffix.partition(":")
    dim = rest.partition(":")[0]
    return dimension_visitors_suffix(dim, value) if head == "u" else resources_suffix(dim, value)


def metrics_dimension(suffix: str) -> str | None:
    """DIM of a metrics suffix m:DIM, else None."""
    head, sep, dim = suffix.partition(":")
    return dim if head == "m" and sep else None


def bucket_prefix(app: str, granularity: str, bucket_id: str) -> str:
    return f"{PREFIX}:{slot_tag(app, granularity, bucket_id)}:{granularity}:{bucket_id}"


def bucket_key(app: str, granularity: str, bucket_id: str, suffix: str) -> str:
    return bucket_prefix(app, granularity, bucket_id) + ":" + suffix


def counters(app: str, granularity: str, bucket_id: str) -> str:
    return bucket_key(app, granularity, bucket_id, COUNTERS)


def dimension(app: str, granularity: str, bucket_id: str, dim: str) -> str:
    return bucket_key(app, granularity, bucket_id, dimension_suffix(dim))


def visitors(app: str, granularity: str, bucket_id: str) -> str:
    return bucket_key(app, granularity, bucket_id, VISITORS)


def first_party_visitors(app: str, granularity: str, bucket_id: str) -> str:
    return bucket_key(app, granularity, bucket_id, FIRST_PARTY)


def dimension_visitors(app: str, granularity: str, bucket_id: str, dim: str, value: str) -> str:
    return bucket_key(app, granularity, bucket_id, dimension_visitors_suffix(dim, value))


def sessions(tag: str) -> str:
    """Media sessions of one slot (app and day, or month) and the progress each counted."""
    return f"{PREFIX}:{tag}:sessions"


def cap_set(app: str, day_id: str, kind: str) -> str:
    """The values of `kind` (hit/caps.py KINDS) counted as themselves for the app that day,
    for the whole deployment (store/capping.py): in the day's slot."""
    return f"{PREFIX}:{slot_tag(app, 'day', day_id)}:cap:{kind}"


def catalogue(app: str) -> str:
    """The app's uploaded resource counts: field DIM:VALUE (and `total`) -> resources."""
    return f"{PREFIX}:catalogue:{{{app}}}"


def flush_sequence(tag: str, writer: str) -> str:
    """Marker of the last flush sequence number `writer` applied in slot `tag`."""
    return f"{PREFIX}:{tag}:seq:{writer}"


def migration_guard(tag: str) -> str:
    """A key of slot `tag` that is never written. Every flush script call names it among
    its keys, so in a Redis Cluster the call runs nowhere while the slot migrates: the
    source answers ASK for a missing key, the target TRYAGAIN for a call on several keys
    with one missing. Otherwise a call could run on the source with part of the slot's
    keys already moved, and fail half way (cluster_send.py, docs/redis-keys.md)."""
    return f"{PREFIX}:{tag}:migrating"


def salt(day_id: str) -> str:
    return f"{PREFIX}:salt:{day_id}"


# ---- the access-platform registry (collector/registry/) -------------------------------
# One hash tag for all of it: every change (record, key index, pending set, version,
# audit entry) is one MULTI/EXEC, which Redis Cluster only allows within one slot.

REGISTRY_TAG = "{registry}"
# Audit entries kept (XADD MAXLEN ~): years of approvals at any realistic pace.
REGISTRY_AUDIT_MAXLEN = 10_000


def registry_key(name: str) -> str:
    return f"{PREFIX}:{REGISTRY_TAG}:{name}"


REGISTRY_PLATFORMS = registry_key("platforms")
REGISTRY_APP_KEYS = registry_key("app-keys")
REGISTRY_PENDING = registry_key("pending")
REGISTRY_VERSION = registry_key("version")
REGISTRY_AUDIT = registry_key("audit")
REGISTRY_ADMIN_TOKENS = registry_key("admin-tokens")
# SHA-256 of each platform's read token -> its platform id (the read API's credentials).
REGISTRY_READ_TOKENS = registry_key("read-tokens")
# Named sets of platforms (a group `set:NAME`): name -> {title, platforms, ...} as JSON.
REGISTRY_GROUPS = registry_key("groups")


# ---- cross-slot HyperLogLog unions (store/hll_union.py) ---------------------------------
# On Redis Cluster, PFCOUNT of keys in several slots is refused: the reader copies each
# HyperLogLog's bytes into keys sharing one hash tag and counts those. They expire on
# their own in case the reader dies before deleting them.
HLL_COPY_TTL_MS = 60_000


def hll_copy(token: str, n: int) -> str:
    return f"{PREFIX}:{{hll:{token}}}:{n}"


# ---- the monthly reports (report/job.py) -----------------------------------------------
REPORT_LEASE = f"{PREFIX}:{{report}}:lease"
REPORT_DONE = f"{PREFIX}:{{report}}:done"


# ---- platform health (§8.4; registry/health_store.py) -----------------------------------
# One hash tag: a health round writes a record, its transition and its anomalies in one
# transaction. The lease names the one process per deployment that runs the job.

HEALTH_TAG = "{health}"
# Transitions kept per platform (LTRIM): months of state changes.
HEALTH_HISTORY_MAXLEN = 500
# Anomalies kept (the oldest beyond are dropped with their delivery state).
HEALTH_ANOMALIES_MAX = 10_000


def health_key(name: str) -> str:
    return f"{PREFIX}:{HEALTH_TAG}:{name}"


HEALTH_RECORDS = health_key("platforms")
HEALTH_ANOMALIES = health_key("anomalies")
HEALTH_ANOMALY_TIMES = health_key("anomaly-times")
HEALTH_OUTBOX = health_key("outbox")
HEALTH_JOB = health_key("job")
HEALTH_LEASE = health_key("lease")


def health_history(platform_id: str) -> str:
    return health_key("history:" + platform_id)


# ---- finality: writers' watermarks and closed buckets (store/finality.py) ---------------
# One hash tag: a round of the announcer reads the writers and moves touched buckets to
# the stream in one script, which Redis Cluster only allows within one slot.

FINALITY_TAG = "{finality}"
# Closed-bucket notifications kept (XADD MAXLEN ~) is the setting finality_stream_maxlen.


def finality_key(name: str) -> str:
    return f"{PREFIX}:{FINALITY_TAG}:{name}"


FINALITY_WATERMARKS = finality_key("watermarks")  # hash writer -> watermark (epoch ms)
FINALITY_FIRSTS = finality_key("firsts")  # hash writer -> watermark of first sends (epoch ms)
FINALITY_WRITERS = finality_key("writers")  # zset writer, scored by when its liveness ends (Redis time, ms)
FINALITY_CURSOR = finality_key("cursor")  # hash granularity -> buckets ending by then were announced (epoch s)
FINALITY_STREAM = finality_key("closed")  # stream app, granularity, bucket
FINALITY_LEASE = finality_key("lease")  # string the token of the process that announces


def finality_touched(granularity: str) -> str:
    """Buckets of `granularity` that received counts and are not announced yet:
    members touched_member(app, bucket), scored by the bucket's end (epoch seconds)."""
    return finality_key("touched:" + granularity)


def touched_member(app: str, bucket_id: str) -> str:
    """A bucket id is digits only, so the first ':' splits the member again."""
    return bucket_id + ":" + app


# ---- exactly once for re-sent events (store/dedupe.py) ----------------------------------


def first_send_ids(app: str, day_id: str, record_slice: int) -> str:
    """The ids of first sends of the app and day (of their bucket) flushed in one slice
    of time (dedupe.ID_SLICE seconds; `record_slice` counts them from the epoch)."""
    return f"{PREFIX}:{slot_tag(app, 'day', day_id)}:ids:{record_slice}"


def event_id(app: str, day_id: str, event: str) -> str:
    """A re-sent event id admitted in the slot of the app and the day of its bucket; its
    value is the token of the batch that applied it — or FIRST_SEND, where a collector
    before the sets of first_send_ids recorded a first send (a rolling upgrade)."""
    return f"{PREFIX}:{slot_tag(app, 'day', day_id)}:id:{event}"
