"""One list of names (collector/store/names.py): docs/redis-keys.md documents exactly
those names, the protocol and the flush script use them, and a real collector writes
nothing else into the counters and metrics hashes."""

from __future__ import annotations

import re
from pathlib import Path

from test_deep import interaction, media, post
from test_ingest import flush, pv

from collector.features import pages
from collector.features.figures import DEEP_BREAKDOWNS
from collector.hit import admission, protocol
from collector.store import names
from collector.store.flush_script import APPLY_FLUSH_LUA

DOC = Path(__file__).resolve().parent.parent / "docs" / "redis-keys.md"


def doc_table(heading: str) -> list[list[str]]:
    """The cells of the table under `heading` in docs/redis-keys.md, header rows excluded."""
    section = DOC.read_text().split(heading, 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[2:]]


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_docs_counters_table_names_every_counter_and_no_other():
    documented = [name for row in doc_table("### Counters (`…:c`)") for name in backticked(row[0])]
    rejected = [name for name in documented if name.startswith(names.REJECTED_PREFIX)]
    assert rejected == ["rejected:REASON[:FIELD]"]
    flagged = [name for name in documented if name.startswith(names.FLAGGED_PREFIX)]
    assert flagged == ["flagged:REASON"]
    flag_row = next(row for row in doc_table("### Counters (`…:c`)") if "flagged:REASON" in row[0])
    remarks = [name for name in backticked(flag_row[1]) if name.startswith(names.FLAGGED_PREFIX)]
    assert remarks == [names.FLAGGED_PREFIX + reason for reason in names.FLAG_REASONS]
    assert admission.FOREIGN_ORIGIN == names.FOREIGN_ORIGIN_FLAG
    counters = [name for name in documented if name not in rejected + flagged]
    assert len(counters) == len(set(counters)), "a counter documented twice"
    assert set(counters) == set(names.COUNTER_FIELDS)


def test_the_docs_metrics_table_names_every_dimensions_metrics():
    documented: dict[str, set[str]] = {}
    previous: set[str] = set()
    for dims, _value, metrics in doc_table("### Deep-tag metrics (`…:m:DIM`)"):
        found = previous if metrics == "same" else set(backticked(metrics))
        for dim in backticked(dims):
            documented[dim] = found
        previous = found
    assert documented == {dim: set(metrics) for dim, metrics in names.METRICS_OF_DIMENSION.items()}


def test_the_docs_dimensions_table_names_every_page_dimension():
    documented = [name for row in doc_table("### Dimensions (`…:d:DIM`)") for name in backticked(row[0])]
    assert sorted(documented) == sorted(pages.DIMENSION_NAMES)
    uv_row = next(row for row in doc_table("## Keys") if row[0].endswith(":u:DIM:VALUE`") and row[2].startswith("UV for"))
    assert backticked(uv_row[2]) == list(pages.UV_DIMENSIONS)


def test_the_names_agree_with_the_protocol_and_the_read_api():
    assert protocol.PROGRESS_BOUNDARIES == set(names.PROGRESS_BOUNDARIES)
    assert set(protocol.INTERACTIONS) == set(names.INTERACTION_METRIC_OF_ACTION)
    assert set(names.INTERACTION_METRIC_OF_ACTION.values()) <= set(names.INTERACTION_METRICS)
    assert protocol.EVENT_TYPES - {"pageview", "engagement"} == set(names.COUNTED_EVENT_TYPES)
    assert list(DEEP_BREAKDOWNS) == list(names.DEEP_DIMENSIONS) == list(names.METRICS_OF_DIMENSION)
    for dim, breakdown in DEEP_BREAKDOWNS.items():
        assert breakdown.sort_metric in names.METRICS_OF_DIMENSION[dim]


def test_the_flush_script_gets_the_completion_bins_of_the_list():
    bins = re.search(r"local COMPLETION_BINS = (.*)\n", APPLY_FLUSH_LUA).group(1)
    assert re.findall(r"'(completion_\w+)'", bins) == [names.completion_bin_metric(lo, hi) for lo, hi in names.COMPLETION_BINS]
    assert [float(x) for x in re.findall(r"\{([0-9.]+),", bins)] == [hi / 100 for _, hi in names.COMPLETION_BINS]
    assert "${" not in APPLY_FLUSH_LUA


async def test_a_collector_writes_only_listed_names(collector_client, rds):
    """Every kind of event, through the real ingest, rollup and flush script: the fields
    of the counters and metrics hashes are all in the list (and the list is not empty of
    what was sent)."""
    client = await collector_client(completed_percent=90)
    events = [
        pv(uid="u1", etr="nav", epos=2, pc="course"),
        {"k": "app1", "t": "engagement", "u": "https://www.example.edu/course/1", "et": 5000, "sd": 40},
        {"k": "app1", "t": "click", "n": "buy", "tr": "nav", "pos": 1},
        {"k": "app1", "t": "exposure", "n": "banner"},
        {"k": "app1", "t": "exposure", "n": "slide", "tr": "nav", "pos": 1},
        {"k": "app1", "t": "custom", "n": "x"},
        media("play"), media("progress", ws=50, wt=50_000, pos=50, pb=50), media("read", ms="r", wt=1000),
        *(interaction(action, **({"score": 4} if action == "rate" else {"ch": "wechat"} if action == "share" else {}))
          for action in protocol.INTERACTIONS),
    ]
    await post(client, events)
    await post(client, [media("ended", ws=100, wt=50_000, pos=100)])
    await post(client, [{"k": "app1", "t": "pageview", "u": "ftp://bad"}], status=400)
    await flush(client)
    counters: set[str] = set()
    metrics: dict[str, set[str]] = {}
    dimensions: set[str] = set()
    for key in rds.scan_iter("eb:{app1|*}:day:*"):
        key = key.decode() if isinstance(key, bytes) else key
        if key.endswith(":c"):
            counters |= {f.decode() if isinstance(f, bytes) else f for f in rds.hkeys(key)}
        elif ":d:" in key:
            dimensions.add(key.rsplit(":d:", 1)[1])
        elif ":m:" in key:
            dim = key.rsplit(":m:", 1)[1]
            metrics.setdefault(dim, set()).update(
                (f.decode() if isinstance(f, bytes) else f).split(":", 1)[0] for f in rds.hkeys(key)
            )
    assert counters and all(names.is_counter_field(name) for name in counters), sorted(counters)
    assert set(metrics) == set(names.DEEP_DIMENSIONS)
    assert dimensions == set(pages.DIMENSION_NAMES) - {"bot"}  # (no bot sent here)
    for dim, written in metrics.items():
        assert written <= set(names.METRICS_OF_DIMENSION[dim]), (dim, sorted(written - set(names.METRICS_OF_DIMENSION[dim])))
    # What was sent reaches the names it should: the list is what is written.
    assert {"pv", "pv_logged_in", "entries", "track_clicks", "track_exposures", "views", "completed",
            "completion_90_100", "progress50", "read_ms", "ratings", "rejected:invalid_value:u"} <= counters
