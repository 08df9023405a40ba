"""edu-beacon collector: hits in, region and device worked out, rollups counted in Redis."""

__version__ = "0.1.0"

# Before any module loads: the compiled hot modules only when built from these sources.
from collector import native  # noqa: E402

native.prefer_sources_when_stale()
