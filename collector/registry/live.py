"""This worker's copy of the registry, for the hit path: in memory, never awaited per hit.

The hit path reads a `RegistrySnapshot` (hit/admission.py); this keeps it fresh. Once a
second it reads the registry's version counter (one GET) and, when it moved — any
change on any replica bumps it — reloads every platform in one round trip
(store.load_all). So a revoked key stops counting on every worker within about a second
of the change, and a worker never waits for Redis while answering a hit.

It also activates approved platforms after their first verified hit (§8.4: integration
verified), off the hit path: the hit path only notes the platform id, the next round
calls store.act(id, "activate"). The store's transaction lets one replica win; for the
others it is a TransitionError, which is fine. Each process tries a platform once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from collector.registry.model import RegistrySnapshot, TransitionError
from collector.registry.store import UNAVAILABLE, NotFound, RegistryStore
from collector.store.periodic import Periodic

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0  # seconds between version checks: changes reach every worker this fast
ACTIVATED_BY = "collector:first-hit"


class LiveRegistry:
    def __init__(
        self,
        store: RegistryStore,
        publish: Callable[[RegistrySnapshot], None],
        take_first_hits: Callable[[], set[str]],
        interval: float = POLL_INTERVAL,
    ) -> None:
        """`publish(snapshot)` hands each loaded snapshot to the hit path; `take_first_hits()`
        returns (and forgets) the approved platforms that had a verified hit since."""
        self.store = store
        self.publish = publish
        self.take_first_hits = take_first_hits
        self.interval = interval
        self.version: int | None = None  # of the snapshot published; None before the first
        self.reloads = 0
        self._tried_activation: set[str] = set()
        self._failing = False
        self._loop = Periodic("registry-refresh", self._round, interval)

    async def start(self) -> None:
        """Load once (so the first hit finds the registry), then keep it fresh."""
        await self.refresh()
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def refresh(self) -> bool:
        """Reload when the version moved; False when Redis could not be read (kept as is)."""
        try:
            if self.version is None or await self.store.version() != self.version:
                snapshot = await self.store.load_all()
                self.publish(snapshot)
                self.version = snapshot.version
                self.reloads += 1
        except UNAVAILABLE as exc:
            self._outage(exc)
            return False
        if self._failing:
            self._failing = False
            log.info("registry: readable again (version %s)", self.version)
        return True

    async def _round(self) -> float:
        if await self.refresh():
            await self._activate_first_hits()
        return self.interval

    async def _activate_first_hits(self) -> None:
        for platform_id in self.take_first_hits() - self._tried_activation:
            try:
                await self.store.act(platform_id, "activate", ACTIVATED_BY, note="first verified hit")
                log.info("registry: platform %s activated by its first verified hit", platform_id)
            except (TransitionError, NotFound):
                pass  # another replica was first, or an admin changed it meanwhile
            except UNAVAILABLE as exc:
                self._outage(exc)
                continue  # not tried: the next verified hit notes it again
            self._tried_activation.add(platform_id)

    def _outage(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "registry: cannot read it (%s); hits are judged by version %s until it answers",
                type(exc).__name__, self.version,
            )
