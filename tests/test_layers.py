"""The layer rule (collector/ARCHITECTURE.md): the inner layers never import the outer
world's libraries. hit/, enrich/ and features/ do no I/O — neither aiohttp nor redis;
store/ and api/ talk to Redis but never to HTTP — no aiohttp. Only web/ speaks HTTP."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import pytest

COLLECTOR = Path(__file__).resolve().parent.parent / "collector"
FORBIDDEN = {
    "hit": {"aiohttp", "redis"},
    "enrich": {"aiohttp", "redis"},
    "features": {"aiohttp", "redis"},
    "store": {"aiohttp"},
    "api": {"aiohttp"},
    "registry": {"aiohttp"},
    "report": {"aiohttp"},  # the report's figures and formats; its HTTP is web/report_routes.py
}
# The registry's pure modules (record, application, kit, tokens): neither library; its
# Redis lives in registry/store.py alone (the CLI and the demo go through the store).
PURE_REGISTRY_MODULES = (
    "model", "application", "credentials", "kit", "kit_page", "release", "table",
    "health", "anomaly", "webhook_sign",  # health, validation, the anomaly detector, webhook signatures
)


def parsed(path: Path) -> ast.Module:
    """`path`'s tree, parsed with the garbage collector off. CPython 3.11 before 3.11.8
    (gh-106905): when a collection during ast.parse runs a finalizer that fails — as the
    coroutines left by other tests' closed event loops do ("Event loop is closed") —
    the AST constructor's depth count goes wrong and ast.parse raises SystemError
    ("AST constructor recursion depth mismatch"). The leftovers are collected first."""
    gc.collect()
    gc.disable()
    try:
        return ast.parse(path.read_text(), str(path))
    finally:
        gc.enable()


def imported_roots(path: Path) -> set[str]:
    """The top-level package of every module `path` imports (relative imports excluded)."""
    roots = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_inner_layers_import_no_outer_library(layer):
    modules = sorted((COLLECTOR / layer).glob("*.py"))
    assert modules, f"collector/{layer}/ has no modules"
    offenders = {
        str(path.relative_to(COLLECTOR)): sorted(imported_roots(path) & FORBIDDEN[layer])
        for path in modules
        if imported_roots(path) & FORBIDDEN[layer]
    }
    assert not offenders, f"collector/{layer}/ must not import {sorted(FORBIDDEN[layer])}: {offenders}"


@pytest.mark.parametrize("module", PURE_REGISTRY_MODULES)
def test_registry_model_and_kit_are_pure(module):
    path = COLLECTOR / "registry" / f"{module}.py"
    assert not imported_roots(path) & {"aiohttp", "redis"}


def test_only_the_registry_stores_import_redis():
    """store.py keeps the registry; health_store.py reads rollups and keeps health (§8.4)."""
    users = sorted(p.name for p in (COLLECTOR / "registry").glob("*.py") if "redis" in imported_roots(p))
    assert users == ["health_store.py", "store.py"]


def test_the_rule_sees_an_import(tmp_path):
    """The scan itself works: a module importing redis inside a function is caught."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import redis.asyncio as r\n    from aiohttp import web\n")
    assert imported_roots(module) == {"redis", "aiohttp"}
