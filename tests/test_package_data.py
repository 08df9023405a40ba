"""Every file of the collector package that is not Python (the flush script's Lua, the
OpenAPI description, the region index) is package data in pyproject.toml: the Docker
image installs with `pip install .`, which leaves out whatever is not listed."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_non_python_file_of_the_package_is_package_data():
    tracked = subprocess.run(["git", "ls-files", "collector"], cwd=ROOT, capture_output=True, text=True, check=True)
    # Markdown beside the code (collector/ARCHITECTURE.md) is for developers, not the runtime.
    data_files = {Path(name) for name in tracked.stdout.split() if not name.endswith((".py", ".md"))}
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    declared = {Path(*package.split(".")) / name for package, names in listed.items() for name in names}
    assert data_files and data_files == declared
