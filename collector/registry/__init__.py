"""The access-platform registry (the standard's §8): apply, approve, issue the app key and its kit.

Pure modules (no redis, no aiohttp): model.py (the platform record, its states and what
the hit path asks of it), application.py (checking an application field by field),
credentials.py (app keys and tokens), kit.py (the integration kit). Its rate limit uses the
hit path's token bucket (collector/hit/ratelimit.py).
Redis lives in store.py only; the CLI in cli.py; HTTP in collector/web/admin_routes.py.
"""
