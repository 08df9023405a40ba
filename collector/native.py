"""Which modules `pip install` compiles with mypyc (issue 17), and whether they are in use.

The per-hit path (protocol → ingest → aggregate → features) and the flush's fold
(rollup, features/pages.py) are spread over many small Python functions; compiled with
mypyc they take about a fifth less CPU per hit and per flushed event (bench/RESULTS.md,
"Session 6: mypyc"). setup.py compiles NATIVE_MODULES when mypyc and a C compiler are at
hand; when either is missing or the build fails, the install still succeeds with the
pure-Python modules, which stay the source of truth (the .so files are built from them
and are never committed). `EDU_BEACON_PURE=1 pip install …` skips the build on purpose.

Left out, and why (mypyc refuses them or changes what they do): hit/record.py (the
journal reads Hit's field types at import: compiled NamedTuple annotations differ),
store/journal.py and web/http_limits.py (exceptions subclassing builtins; a hit's journal
record is encoded in store/records.py, compiled),
web/hit_server.py (subclasses aiohttp's AppRunner, which has __slots__: what it
does per request that is not I/O is in web/hit_connection.py and web/hit_head.py, compiled),
features/figures.py (read API, not hot; a module-level tuple mypyc cannot type),
enrich/device_models.py (versions its cached table by its own source file, which a
compiled module's __file__ does not name).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.abc
import importlib.util
import json
import logging
import sys
from collections.abc import Sequence
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parent
# Written by setup.py next to the compiled modules: the digest of each source they were
# compiled from.
MANIFEST = "native_sources.json"

NATIVE_MODULES = (
    "collector.enrich.hashed_cache",
    "collector.enrich.ua_versions",
    "collector.enrich.device",
    "collector.enrich.crawler_list",
    "collector.enrich.geo",
    "collector.hit.protocol",
    "collector.hit.ingest",
    "collector.hit.caps",
    "collector.hit.ratelimit",
    "collector.hit.visitors",
    "collector.hit.remarks",
    "collector.hit.admission",
    "collector.hit.uvguard",
    "collector.hit.clientip",
    "collector.hit.url_secrets",
    "collector.histogram",
    "collector.store.aggregate",
    "collector.store.rollup",
    "collector.store.flush_calls",
    "collector.store.keys",
    "collector.store.records",
    "collector.store.names",
    "collector.store.buckets",
    "collector.features.clicks",
    "collector.features.deep",
    "collector.features.facts",
    "collector.features.interactions",
    "collector.features.media",
    "collector.features.pages",
    "collector.features.reading",
    "collector.features.resources",
    "collector.features.tracks",
    "collector.features.users",
    "collector.web.hit_head",
    "collector.web.hit_connection",
)

# Written in C, built beside the mypyc modules (setup.py) and only with them: mypyc has no
# native fixed array of int64 (hit/_id_table.c says why). The module that imports each keeps
# a pure-Python fallback. By module name: its source, in the package.
C_MODULES = {
    "collector.hit._id_table": "hit/_id_table.c",
    "collector.hit._visit_table": "hit/_visit_table.c",
    "collector._untrack": "_untrack.c",
    "collector.hit._query": "hit/_query.c",
    "collector.hit._tuple_new": "hit/_tuple_new.c",
    "collector.web._head_scan": "web/_head_scan.c",
    "collector.enrich._ua_mask": "enrich/_ua_mask.c",
    "collector.store._resp": "store/_resp.c",
    "collector.store._split": "store/_split.c",
    "collector.store._lines": "store/_lines.c",
    "collector.hit._batch_json": "hit/_batch_json.c",
}

# Headers the C modules include (by relative path): part of every C module's source, so
# their digests are in the build's manifest too.
C_HEADERS = ("_long_value.h",)


def c_module(name: str) -> ModuleType | None:
    """One of C_MODULES, imported; None when it was not built, or its build is stale (then
    prefer_sources_when_stale refuses it): its importer keeps its pure-Python form."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def compiled_modules() -> list[str]:
    """The NATIVE_MODULES this process imported from a compiled extension, not from .py."""
    return [name for name in NATIVE_MODULES if _is_extension(importlib.import_module(name).__file__ or "")]


@functools.cache  # modules are imported once: the answer cannot change
def in_use() -> bool:
    """True when every module of NATIVE_MODULES runs compiled (a partial set is not expected:
    setup.py builds them all or none)."""
    return len(compiled_modules()) == len(NATIVE_MODULES)


def _is_extension(path: str) -> bool:
    return any(path.endswith(suffix) for suffix in EXTENSION_SUFFIXES)


def source_digests(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """sha256 of each NATIVE_MODULES and C_MODULES source, by module name, and of each of
    C_HEADERS, by its path in the package."""
    sources = {name: source_path(name, package_dir) for name in NATIVE_MODULES}
    sources.update((name, package_dir / source) for name, source in C_MODULES.items())
    sources.update((header, package_dir / header) for header in C_HEADERS)
    return {name: _digest(path) for name, path in sources.items()}


def _digest(path: Path) -> str:
    """A source's sha256; "missing" for a source the install left out, which then matches
    no build: the collector runs as Python instead of failing to import."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "missing"


def source_path(name: str, package_dir: Path = PACKAGE_DIR) -> Path:
    return package_dir.joinpath(*name.split(".")[1:]).with_suffix(".py")


def prefer_sources_when_stale() -> None:
    """Run the .py sources when the compiled modules were not built from them.

    Python imports an extension module before a .py of the same name, so after an edit
    of ingest.py (an editable install: the .so files sit beside the sources) the old
    compiled code would run, tests included. Then every NATIVE_MODULES loads from source:
    all of them, since compiled callers would keep calling the stale compiled functions;
    and C_MODULES are not imported at all (their importers fall back to Python).
    Called by collector/__init__.py, before any of them is imported."""
    try:
        built = json.loads((PACKAGE_DIR / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        built = None
    if built == source_digests():
        return
    if built is not None:
        logging.getLogger(__name__).warning(
            "compiled modules are older than their sources: running pure Python (reinstall to compile: pip install -e .)")
    sys.meta_path.insert(0, _SourcesFirst())


class _SourcesFirst(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname in C_MODULES:  # stale, or built without the others: not run
            raise ModuleNotFoundError(f"{fullname} runs only with a current compiled build", name=fullname)
        if fullname not in NATIVE_MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))
