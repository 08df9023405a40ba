# A GET hit's ASCII query string decoded in C (hit/_query.c), used by hit/protocol.py decode_target_query
# and decode_target_event.
from typing import Any

class QueryDecoder:
    def __init__(
        self, names: tuple[str, ...], kept_encoded: dict[str, int], integers: tuple[str, ...] = (),
        later: tuple[str, ...] = (),
    ) -> None: ...
    def decode(self, raw: bytes, start: int, /) -> dict[str, str] | None: ...
    def event(self, raw: bytes, start: int, /) -> tuple[dict[str, Any], bool] | None: ...
