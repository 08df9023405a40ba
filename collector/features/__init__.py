"""The tag features: what each kind of event counts per hit and the figures it adds to
the read API. Imports neither aiohttp nor redis."""
