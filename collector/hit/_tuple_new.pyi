# tuple.__new__(cls, items) in C (collector/hit/_tuple_new.c), for hit/ingest.py's _hit.
from typing import Any

def tuple_new(cls: type[Any], items: tuple[Any, ...], /) -> Any: ...
