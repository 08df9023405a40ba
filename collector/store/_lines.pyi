# A request's hits as journal lines, in C (collector/store/_lines.c), for store/records.py.
from typing import Any

class Encoder:
    def __init__(self, hit_type: type[Any], request_at: tuple[int, ...], request_as: tuple[int, ...],
                 row_at: tuple[int, ...], deep_type: type[Any], session_type: type[Any]) -> None: ...
    def encode(self, hits: list[Any], /) -> list[bytes] | None: ...
