"""The protocol's limits as JSON, for the beacon's tests: every limit the beacon cuts its
fields to comes from hit/protocol.py, so they are generated from it rather than copied.

    python -m collector.hit.protocol_limits > beacon_js/test/protocol-limits.json

tests/test_protocol_limits.py checks the committed file equals a fresh generation, and
beacon_js/test/limits.test.js checks the beacon cuts each field exactly there.
"""

from __future__ import annotations

import json

from collector.hit import protocol


def limits() -> dict[str, object]:
    return {
        "strings": dict(sorted(protocol.STRING_FIELDS.items())),
        "integers": {name: list(bounds) for name, bounds in sorted(protocol.INT_FIELDS.items())},
        "props": {
            "max_keys": protocol.PROPS_MAX_KEYS,
            "max_key": protocol.PROPS_MAX_KEY,
            "max_value": protocol.PROPS_MAX_VALUE,
        },
        "progress_boundaries": sorted(protocol.PROGRESS_BOUNDARIES),
        "interactions": sorted(protocol.INTERACTIONS),
    }


def render() -> str:
    return json.dumps(limits(), indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
