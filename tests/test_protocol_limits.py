"""The beacon's copy of the protocol's limits (beacon_js/test/protocol-limits.json, what
its tests check the beacon's clipping against) is generated from hit/protocol.py."""

from __future__ import annotations

from pathlib import Path

from collector.hit import protocol_limits

COMMITTED = Path(__file__).resolve().parent.parent / "beacon_js" / "test" / "protocol-limits.json"


def test_the_beacons_limits_file_equals_a_fresh_generation():
    assert COMMITTED.read_text() == protocol_limits.render(), (
        "the protocol changed: run `python -m collector.hit.protocol_limits > beacon_js/test/protocol-limits.json`,"
        " then `cd beacon_js && npm test` (and fix the beacon where it cuts a field elsewhere)"
    )


def test_the_limits_hold_what_the_beacon_cuts():
    limits = protocol_limits.limits()
    for field in ("u", "r", "ti", "pc", "n", "uid", "tr", "rid", "rt", "subj", "stage", "src", "ch"):
        assert limits["strings"][field] > 0
    assert limits["integers"]["pos"] == [0, 9_999_999]
