"""Issue 17: the hot modules compiled by mypyc at install (setup.py, collector/native.py).

The behaviour of the compiled modules is what their own tests check (test_ingest,
test_rollups, …: they run against whatever the install built). Here: the build is all or
none, and the collector says which it runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from collector import native
from tests.test_metrics import scrape, total

PACKAGE = Path(native.__file__).resolve().parent


def test_every_native_module_has_its_python_source():
    """The .py stays the fallback and the build's input: a module renamed or moved must be
    renamed here too, or the install would quietly compile less."""
    for name in native.NATIVE_MODULES:
        parts = name.split(".")
        assert parts[0] == "collector"
        assert PACKAGE.joinpath(*parts[1:]).with_suffix(".py").is_file(), name


def test_compiled_all_or_none():
    """setup.py builds every module or none: a module shim without the others (or without
    the shared library) would not be a tested combination."""
    assert len(native.compiled_modules()) in (0, len(native.NATIVE_MODULES))
    assert native.in_use() == bool(native.compiled_modules())
    if native.in_use():  # the shared runtime library lives inside the package
        assert importlib.util.find_spec("collector.native__mypyc") is not None


async def test_api_collector_and_metrics_say_whether_native(collector_client):
    client = await collector_client()
    body = await (await client.get("/api/collector")).json()
    assert body["native"] is native.in_use()
    assert total(await scrape(client), "edubeacon_native_modules") == int(native.in_use())
