"""The per-hit layer: protocol, validation, the client IP, visitors, caps and ingest.

Runs for every hit and never awaits: it enriches a hit (enrich/), asks the tag features
(features/) what it counts, journals it and counts it in memory (store/). Imports
neither aiohttp nor redis.
"""
