"""Compiles the hot modules with mypyc at `pip install` (issue 17), pure Python otherwise.

Everything else about the package is in pyproject.toml. The modules are listed in
collector/native.py. A failed or impossible build is not a failed install: the
collector then runs the very same modules as Python (`/api/collector` says which:
"native"). `EDU_BEACON_PURE=1` skips the build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def load_native():
    """collector/native.py (the module list, the source digests), without importing the package."""
    spec = importlib.util.spec_from_file_location("_edu_beacon_native", HERE / "collector" / "native.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NATIVE = load_native()


def warn(message: str) -> None:
    print(f"edu-beacon: {message}; the collector runs as pure Python", file=sys.stderr)


# The commands that build extensions; the others (egg_info: pip's metadata steps) run this
# file too, and would each run mypyc's type check and code generation for nothing.
BUILD_COMMANDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop", "bdist_egg"}


def native_extensions() -> list:
    if not BUILD_COMMANDS.intersection(sys.argv[1:]):
        return []
    # A pure install over an earlier compiled one (editable: the .so files stay in the
    # tree): without the manifest, collector/native.py loads the sources.
    (HERE / "collector" / NATIVE.MANIFEST).unlink(missing_ok=True)
    if os.environ.get("EDU_BEACON_PURE"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        warn("mypyc is not installed, nothing compiled")
        return []
    paths = [str(Path(*name.split(".")).with_suffix(".py")) for name in NATIVE.NATIVE_MODULES]
    try:
        # group_name inside the package: mypyc's shared runtime library becomes
        # collector/native__mypyc.*.so, found wherever the package is.
        compiled = mypycify(paths, group_name="collector.native", opt_level="3", verbose=False)
    except (Exception, SystemExit) as exc:  # mypyc refusing a construct, a type error (it exits): fall back, said loudly
        warn(f"mypyc could not compile the hot modules ({exc!r})")
        return []
    # The C modules, built with the mypyc ones (all or none, OptionalBuildExt).
    headers = [f"collector/{header}" for header in NATIVE.C_HEADERS]
    return compiled + [Extension(name, [f"collector/{source}"], depends=headers, extra_compile_args=["-O3"])
                       for name, source in NATIVE.C_MODULES.items()]


class OptionalBuildExt(build_ext):
    """Builds the compiled modules all or none: a compiler error removes whatever was built,
    so that no module shim is left without the shared library it loads."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            self._remove_outputs()
            warn(f"compiling the hot modules failed ({exc})")
            return
        if self.extensions:  # what they were built from: collector/native.py checks it at import
            manifest = Path(self.get_ext_fullpath("collector.native__mypyc")).parent / NATIVE.MANIFEST
            manifest.write_text(json.dumps(NATIVE.source_digests(HERE / "collector")), encoding="utf-8")

    def _remove_outputs(self) -> None:
        for ext in self.extensions:
            for path in (self.get_ext_fullpath(ext.name), HERE / self.get_ext_filename(ext.name)):
                Path(path).unlink(missing_ok=True)


setup(ext_modules=native_extensions(), cmdclass={"build_ext": OptionalBuildExt})
