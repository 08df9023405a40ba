"""The store: Redis key schema, time buckets, in-memory aggregation, the journal, the
rollup and the flusher that applies it to Redis (exactly once), salts and the Redis
client. Never imports aiohttp."""
