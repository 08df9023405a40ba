"""Issue 17: the hot modules compiled by mypyc at install (setup.py, collector/native.py).

The behaviour of the compiled modules is what their own tests check (test_ingest,
test_rollups, …: they run against whatever the install built). Here: the build is all or
none, and the collector says which it runs."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from collector import native
from collector.hit.remarks import compiled_record
from tests.test_metrics import scrape, total

PACKAGE = Path(native.__file__).resolve().parent


def test_every_native_module_has_its_python_source():
    """The .py stays the fallback and the build's input: a module renamed or moved must be
    renamed here too, or the install would quietly compile less."""
    for name in native.NATIVE_MODULES:
        parts = name.split(".")
        assert parts[0] == "collector"
        assert PACKAGE.joinpath(*parts[1:]).with_suffix(".py").is_file(), name
    for name, source in native.C_MODULES.items():
        assert name.startswith("collector.") and PACKAGE.joinpath(source).is_file(), name
    for header in native.C_HEADERS:  # in the manifest: a header left out would match no build
        assert PACKAGE.joinpath(header).is_file(), header


@pytest.mark.skipif(not os.environ.get("EDU_BEACON_REQUIRE_NATIVE"), reason="compiling is optional outside CI")
def test_the_install_compiled_when_required():
    """CI sets EDU_BEACON_REQUIRE_NATIVE (.ci/run): there a build that fell back to pure
    Python fails the run rather than skipping the compiled-only tests. (A type error in a
    module only the build's own environment sees — a `type: ignore` unused without
    hiredis — once made a fresh install compile nothing, and went unnoticed as a skip.)"""
    assert native.in_use(), "the install compiled nothing: pip install -v -e . shows mypyc's error"


def test_compiled_all_or_none():
    """setup.py builds every module or none: a module shim without the others (or without
    the shared library) would not be a tested combination."""
    assert len(native.compiled_modules()) in (0, len(native.NATIVE_MODULES))
    assert native.in_use() == bool(native.compiled_modules())
    if native.in_use():  # the shared runtime library lives inside the package
        assert importlib.util.find_spec("collector.native__mypyc") is not None
    # The C modules with them, never without (hit/remarks.py: the re-send record's tables).
    assert (compiled_record() is not None) == native.in_use()


async def test_api_collector_and_metrics_say_whether_native(collector_client):
    client = await collector_client()
    body = await (await client.get("/api/collector")).json()
    assert body["native"] is native.in_use()
    assert total(await scrape(client), "edubeacon_native_modules") == int(native.in_use())


def _edit_a_source(package: Path) -> None:
    with (package / "hit" / "caps.py").open("a", encoding="utf-8") as f:
        f.write("\n# edited after the build\n")


def _run_copy(tmp_path: Path, change: Callable[[Path], None] | None = None) -> list[str]:
    """A copy of the installed package (its .so files included), changed by `change` or
    not, imported by a fresh interpreter: [native in use, where ingest was loaded from,
    whether the re-send record is the compiled one]."""
    shutil.copytree(PACKAGE, tmp_path / "collector", ignore=shutil.ignore_patterns("__pycache__"))
    if change is not None:
        change(tmp_path / "collector")
    code = ("from collector import native; import collector.hit.ingest as i; from collector.hit import remarks;"
            " print(native.in_use()); print(i.__file__); print(remarks.RecentIds().table is not None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)},
                         check=True, capture_output=True, text=True)
    return out.stdout.split()


@pytest.mark.skipif(not native.in_use(), reason="the install compiled nothing (no mypyc or no C compiler)")
def test_an_edited_source_runs_as_python_not_its_stale_build(tmp_path):
    """An editable install keeps the .so beside the .py: after an edit, the old compiled
    code must not run (tests included). Every listed module then loads from source."""
    assert _run_copy(tmp_path / "as_built")[::2] == ["True", "True"]
    in_use, ingest_file, compiled_record_used = _run_copy(tmp_path / "edited", _edit_a_source)
    assert in_use == "False" and compiled_record_used == "False"
    assert ingest_file.endswith("ingest.py")


@pytest.mark.skipif(not native.in_use(), reason="the install compiled nothing (no mypyc or no C compiler)")
def test_an_install_without_a_c_source_runs_as_python_not_failing_to_import(tmp_path):
    """native.py hashes each C module's source at import: an install that left one out
    (the package data once lacked hit/_id_table.c) cannot tell its build current, so it
    runs as Python — it must still import (it raised FileNotFoundError)."""
    in_use, ingest_file, compiled_record_used = _run_copy(
        tmp_path, lambda package: (package / native.C_MODULES["collector.hit._id_table"]).unlink())
    assert in_use == "False" and compiled_record_used == "False"
    assert ingest_file.endswith("ingest.py")


@pytest.mark.skipif(not native.in_use(), reason="the install compiled nothing (no mypyc or no C compiler)")
def test_an_edited_c_header_makes_the_build_stale(tmp_path):
    """A header the C modules include (native.C_HEADERS) is part of their source: after an
    edit, the modules built from the old one must not run."""
    def edit_header(package: Path) -> None:
        with (package / native.C_HEADERS[0]).open("a", encoding="utf-8") as f:
            f.write("\n/* edited after the build */\n")

    in_use, ingest_file, compiled_record_used = _run_copy(tmp_path, edit_header)
    assert in_use == "False" and compiled_record_used == "False"
    assert ingest_file.endswith("ingest.py")
