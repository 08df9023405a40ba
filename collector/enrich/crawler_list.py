"""The crawler-user-agents list: ~1,500 maintained patterns of crawlers, monitors, feed
fetchers, link previewers and HTTP libraries (PyPI ``crawler-user-agents``, MIT,
© Martin Monperrus and contributors), read from the installed package at start-up.

Python's ``re`` would try the patterns one after another (ms per UA); ua-parser-rs, which
the collector already uses, runs them as one native set that prefilters on the patterns'
literal parts: a few us per UA.  Without ua-parser-rs a chunked ``re`` fallback keeps the
same answers, slowly (like the rest of that path).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["CRAWLER_BRAND", "CrawlerList", "crawler_name"]

# The brand of the list's native rules: what tells a crawler's answer from a device rule's
# in an extractor that holds both (CrawlerList.load_ahead_of).
CRAWLER_BRAND = "crawler-user-agents"

# Patterns of the list that name phones, browsers or apps that people use, as well as a
# crawler: seen matching human UAs in the tuning half of bench/ua_corpus.py.
NOT_BOTS = frozenset({
    "AP3A\\.240617\\.008",  # an Android build id, shared by many OPPO/OnePlus phones
    "Sogou",  # Sogou Mobile browser (Sogou's crawlers say "spider": the word rule has them)
    "Butterfly",  # HTC Butterfly phones
    "Viber",  # the Viber app's in-app browser
    "Fever",  # Fever tablets
    "Sonic",  # ViewSonic and O+ Sonic phones
})

_NAME_RE = re.compile(r"[\w.!-]*\w")
_Matcher = Callable[[str], str | None]


def _load_patterns() -> list[str]:
    spec = find_spec("crawleruseragents")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("crawler-user-agents")
    data = json.loads((Path(spec.origin).parent / "crawler-user-agents.json").read_text("utf-8"))
    return [e["pattern"] for e in data if e.get("pattern") and e["pattern"] not in NOT_BOTS]


def _native_rule(pattern: str) -> tuple:
    """A DeviceExtractor rule (regex, flag, family, brand, model) whose family is the match."""
    return (f"({pattern})", None, "$1", CRAWLER_BRAND, None)


def _native_extractor(patterns: list[str], followed_by: list[tuple] | None = None) -> tuple[Any, int]:
    """One ua-parser-rs DeviceExtractor of the patterns it can run (_combined_extractor),
    followed by the rules `followed_by`; and how many patterns are in it."""
    import ua_parser_rs

    usable = []
    for p in patterns:
        try:  # the list is written for many engines; skip what Rust's regex cannot run
            ua_parser_rs.DeviceExtractor([_native_rule(p)])
            usable.append(p)
        except Exception:
            log.debug("crawler pattern not usable natively: %r", p)
    return _combined_extractor(ua_parser_rs.DeviceExtractor, usable, followed_by), len(usable)


def _crawler_matcher(extractor: Any) -> _Matcher:
    """The matched text of `extractor`'s first answer when a crawler rule gives it."""

    def match(ua: str) -> str | None:
        m = extractor.extract(ua)
        return m.family if m is not None and m.brand == CRAWLER_BRAND else None

    return match


# Patterns per native rule: a few hundred make an alternation the engine's literal
# prefilter still covers (1,500 in one rule: ~21 us per corpus UA instead of ~2 us).
_PATTERNS_PER_RULE = 400


def _combined_extractor(
    extractor_class: Callable[..., Any], patterns: list[str], followed_by: list[tuple] | None = None,
) -> Any:
    """One native extractor whose rules are alternations of up to _PATTERNS_PER_RULE
    patterns each, in list order (fewer when the regex engine's size limit refuses one).

    Memory: ua-parser-rs compiles every rule into a regex of its own, ~12 kB each even
    for a plain word, so one rule per pattern cost each worker 17 MB for the list's
    ~1,500 patterns; four alternations cost ~4 MB, as fast. Which UAs match is the same
    (tests/test_startup_memory.py checks it over the UA corpus); where several patterns
    of one rule match, the one whose match starts first names the crawler
    ("W3C-checklink/4.5 libwww-perl/5.8" is W3C-checklink), where a rule per pattern
    answered the first in list order (libwww-perl). bench/RESULTS.md, session 7.
    The rules `followed_by` come after the list's, in the same extractor.
    """
    after = list(followed_by or ())
    parts = max(1, -(-len(patterns) // _PATTERNS_PER_RULE))  # ceiling division
    while True:
        size = max(1, -(-len(patterns) // parts))  # balanced parts, every pattern in one
        chunks = [patterns[i : i + size] for i in range(0, len(patterns), size)]
        try:
            return extractor_class([_native_rule("|".join(f"(?:{p})" for p in chunk)) for chunk in chunks] + after)
        except Exception:
            if size <= 1:
                raise
            parts *= 2  # an alternation too large for the engine: split it


def _re_matcher(patterns: list[str]) -> tuple[_Matcher, int]:
    usable = []
    for p in patterns:
        try:
            re.compile(p)
            usable.append(p)
        except re.error:
            log.debug("crawler pattern not usable by re: %r", p)
    chunks = [re.compile("|".join(usable[i : i + 50])) for i in range(0, len(usable), 50)]

    def match(ua: str) -> str | None:
        for chunk in chunks:
            m = chunk.search(ua)
            if m is not None:
                return m.group(0)
        return None

    return match, len(usable)


class CrawlerList:
    """`name(ua)`: the crawler's name (the matched text's first token) or None."""

    def __init__(self, matcher: _Matcher | None = None, patterns: int = 0) -> None:
        self._match = matcher
        self.patterns = patterns  # how many patterns are in use (0: list not installed)

    @classmethod
    def load(cls, native: bool) -> CrawlerList:
        if native:
            return cls.load_ahead_of([])[0]
        try:
            return cls(*_re_matcher(_load_patterns()))
        except Exception as e:
            _log_unavailable(e)
            return cls()

    @classmethod
    def load_ahead_of(cls, rules: list[tuple]) -> tuple[CrawlerList, Any]:
        """The list natively, in one ua-parser-rs DeviceExtractor ahead of `rules` (other
        DeviceExtractor rules), and that extractor (None if the list is unavailable). Its
        first answer in list order is a crawler's (brand CRAWLER_BRAND) when any pattern
        matches, else the first of `rules` that matches: one call asks both (ua-parser's device
        rules never carry that brand: tests/test_device_parts.py)."""
        try:
            extractor, usable = _native_extractor(_load_patterns(), rules)
        except Exception as e:
            _log_unavailable(e)
            return cls(), None
        return cls(_crawler_matcher(extractor), usable), extractor

    def name(self, ua: str) -> str | None:
        if self._match is None:
            return None
        try:
            hit = self._match(ua)
        except UnicodeError:  # lone surrogates cannot cross into Rust
            hit = self._match(ua.encode("utf-8", "replace").decode("utf-8"))
        return crawler_name(hit) if hit is not None else None


def _log_unavailable(error: Exception) -> None:
    log.error("crawler-user-agents list unavailable (%s): bots are found by token rules only", error)


def crawler_name(hit: str) -> str:
    """A crawler's name from the text its pattern matched: the first token."""
    m = _NAME_RE.search(hit)
    return m.group(0) if m is not None else "bot"
