"""The flush script's source: the media session functions (features/media_sessions.lua,
beside the feature that produces the sessions) followed by the apply loop
(store/apply_flush.lua), joined once at import. Both are package data (pyproject.toml)."""

from __future__ import annotations

from importlib import resources

from collector.features.media import sessions_lua

APPLY_FLUSH_LUA: str = sessions_lua() + "\n" + resources.files("collector.store").joinpath("apply_flush.lua").read_text(encoding="utf-8")
