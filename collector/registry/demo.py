"""The README's `demo` platform, registered on a first start with the embedded Redis.

`./serve.sh` and the README's "Try it" (`k=demo`) must keep working on a fresh machine,
so an empty registry of an embedded Redis gets one active test platform whose app key
is `demo`, for pages on localhost. A registry with any platform in it is left alone.
"""

from __future__ import annotations

import asyncio
import logging

from collector.registry.kit import eb_queue_snippet
from collector.registry.store import RegistryStore
from collector.settings import Settings
from collector.store import redis_client

log = logging.getLogger(__name__)


def register_demo_platform(settings: Settings) -> bool:
    """True when the demo platform was registered now (its snippet is then logged)."""
    return asyncio.run(_register(settings))


async def _register(settings: Settings) -> bool:
    client = redis_client.connect(settings.redis_url, socket_timeout=5, socket_connect_timeout=3)
    try:
        platform = await RegistryStore(client).register_demo("serve:first-start")
    finally:
        await client.aclose()
    if platform is None:
        return False
    base_url = settings.public_url or f"http://localhost:{settings.port}"
    script = "beacon.full.js" if platform.scope.deep else "beacon.js"
    log.info(
        "registry: registered the demo platform (id %s, app key %s, test traffic counted as %s, pages on %s); "
        "its snippet:\n%s",
        platform.id, platform.app_key, platform.series, ", ".join(platform.domains), eb_queue_snippet(base_url, script, platform.app_key),
    )
    return True
