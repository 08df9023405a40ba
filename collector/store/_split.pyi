from collections.abc import Callable
from typing import Any

def dicts_by_first(entries: dict[Any, Any], pace: Callable[[], object], every: int, /) -> dict[Any, dict[Any, Any]]: ...
