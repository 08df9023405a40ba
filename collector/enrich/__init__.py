"""Enrichment: region from the IP (geo, Chinese regions) and device class from the
User-Agent. Pure lookups with bounded caches; imports neither aiohttp nor redis."""
