# collector/untracked.py's `untracked` in C (collector/_untrack.c).
from typing import TypeVar

Container = TypeVar("Container")

def untracked(container: Container, /) -> Container: ...
