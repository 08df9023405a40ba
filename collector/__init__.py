"""edu-beacon collector: hits in, region and device worked out, rollups counted in Redis."""

__version__ = "0.1.0"
