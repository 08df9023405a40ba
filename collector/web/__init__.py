"""The web layer: the aiohttp application, the hit fast path and every HTTP route.

The only layer that imports aiohttp. It adapts HTTP to the per-hit layer (hit/), the
read API (api/) and the store's health (store/).
"""
