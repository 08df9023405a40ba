"""The read API's figures, computed from the Redis rollups. Never imports aiohttp (the
HTTP handlers are in web/)."""
