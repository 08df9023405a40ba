"""The UV inflation guard: one client address may bring only so many new people a minute.

UV counts distinct visitors (client IP + User-Agent), first-party ids (`vid`) and
logged-in users (`uid`). All three come from the client, so one address varying its
User-Agent, `vid` or `uid` could make as many "people" as it sends hits. A real
address with many people — a school, a campus network — brings some hundreds a
minute, not thousands. So per address and minute, the first `threshold` distinct
identities of each kind count as usual; the next ones are *suspect*: the hit still
counts as a page view (it may well be a real pupil: a threshold errs on UV only), but
its identity is set aside — hit/ingest.py counts it under one visitor per address
(not a new one), without its `vid` or `uid` — and the hit is flagged
`flagged:suspect_visitor|vid|uid`. `suspect` here counts the same per kind.

Memory is bounded: the identities of the current minute only (forgotten when the next
begins), as 64-bit hashes, at most `uv_guard_identities` of them (with the combinations of a
visitor, vid and uid that came together: those cost one lookup the next time). Past that an identity is
not judged — counted as usual — and `unjudged` says how many were.

Per worker process: an address whose hits spread over N workers may bring up to N
times the threshold. Identities are those of the receipt minute, not the event's.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from collector.native import c_module
from collector.store.names import SUSPECT_UID_FLAG, SUSPECT_VID_FLAG, SUSPECT_VISITOR_FLAG
from collector.untracked import untracked_set

# Identities one worker remembers per minute by default (settings.uv_guard_identities).
# Compiled (hit/_id_table.c HashSet and HashCounts): 2.5 MB at 50,000, whether they come
# from one address or from 50,000. As a set and a dict of int objects (the fallback): ~110
# bytes each when every one comes from a new address (a set slot and an int per identity, a
# dict entry per address and kind), 6.0 MB at 50,000 (bench/RESULTS.md, session 28).
MAX_IDENTITIES = 50_000

VISITOR, VID, UID = "visitor", "vid", "uid"
KINDS = (VISITOR, VID, UID)
SUSPECT_FLAGS = {VISITOR: SUSPECT_VISITOR_FLAG, VID: SUSPECT_VID_FLAG, UID: SUSPECT_UID_FLAG}  # flagged:REASON


class UvGuard:
    def __init__(self, threshold: int, max_identities: int = MAX_IDENTITIES, compact: bool = True) -> None:
        self.threshold = threshold
        self.max_identities = max_identities
        self.minute = -1
        # Of this minute: hash((kind, address, identity)) and, for a hit with none suspect,
        # hash((address, visitor, vid, uid)), in a HashSet (or a set: minute_memory); and
        # hash((kind, address)) -> its distinct identities this minute, in a HashCounts (or
        # a dict). Either holds at most max_identities keys: a count is set only beside an
        # identity added. Typed Any: the compiled tables and the set and dict answer alike.
        self._known: Any
        self._counts: Any
        self._known, self._counts = minute_memory(max_identities, compact)
        self.suspect: Counter[str] = Counter()  # kind -> hits whose identity was set aside
        self.unjudged = 0  # identities counted unjudged: the minute's memory was full
        # The last hit's identities when this minute knows their combination (`_last_known`
        # False: none): a request's events repeat them (the same visitor key object,
        # hit/ingest.py VisitorMemo), and answer () again without a tuple, its hash and a set
        # lookup per event. Four attributes, not a tuple of them: compiled, each item read
        # from a typed tuple checked all of its items' types again (~250 instructions an
        # event, bench/RESULTS.md session 23).
        self._last_known = False
        self._last_address = ""
        self._last_visitor = b""
        self._last_vid = ""
        self._last_uid: str | None = None

    def at(self, minute: int) -> None:
        """The minute of receipt: a new one forgets the last one's identities."""
        if minute != self.minute:
            self.minute = minute
            self._known.clear()
            self._counts.clear()
            self._last_known = False

    def suspects(self, address: str, visitor: bytes, vid: str, uid: str | None) -> tuple[str, ...]:
        """The kinds (VISITOR, VID, UID) of a hit's identities that are suspect: mostly none.

        A hit whose identities all came together before this minute costs one set lookup;
        only a new combination is judged kind by kind. A suspect one is judged again at
        every hit (its combination is not remembered), so `suspect` counts hits.
        """
        if (self._last_known and self._last_visitor is visitor and self._last_address == address
                and self._last_vid == vid and self._last_uid == uid):
            return ()
        combination = hash((address, visitor, vid, uid))
        if combination in self._known:
            self._known_last(address, visitor, vid, uid)
            return ()
        found: tuple[str, ...] = ()  # in KINDS' order; spelled out, as no generator per hit
        if visitor and not self.admits(VISITOR, address, visitor):
            found = (VISITOR,)
        if vid and not self.admits(VID, address, vid):
            found += (VID,)
        if uid and not self.admits(UID, address, uid):
            found += (UID,)
        if not found and len(self._known) < self.max_identities:
            self._known.add(combination)
            self._known_last(address, visitor, vid, uid)
        return found

    def _known_last(self, address: str, visitor: bytes, vid: str, uid: str | None) -> None:
        """Remember a hit's identities, whose combination this minute knows, as the last."""
        self._last_known = True
        self._last_address, self._last_visitor, self._last_vid, self._last_uid = address, visitor, vid, uid

    def admits(self, kind: str, address: str, identity: object) -> bool:
        """True when `identity` counts (seen this minute, or among the first `threshold`
        new ones of `address`); False when it is suspect (and counted so)."""
        key = hash((kind, address, identity))
        known = self._known
        if key in known:
            return True
        counter = hash((kind, address))
        seen = self._counts.get(counter, 0)
        if seen >= self.threshold:
            self.suspect[kind] += 1
            return False
        if len(known) >= self.max_identities:
            self.unjudged += 1
            return True
        known.add(key)
        self._counts[counter] = seen + 1
        return True

    def __len__(self) -> int:
        return len(self._known)


def minute_memory(max_identities: int, compact: bool = True) -> tuple[Any, Any]:
    """A UV guard's memory of a minute, empty: its identities and its counts by address and
    kind. Compiled installs (and `compact`): a HashSet and a HashCounts of 64-bit slots, no
    object per identity (so nothing for the garbage collector to walk, nor for pymalloc to
    make and free by the ten thousand each minute). Otherwise a set of ints, kept out of the
    garbage collector's walks (collector/untracked.py; cleared, it stays so), and a dict."""
    tables = c_module("collector.hit._id_table") if compact else None
    if tables is not None:
        return tables.HashSet(max_identities), tables.HashCounts(max_identities)
    return untracked_set(), {}
