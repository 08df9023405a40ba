"""The beacon release a kit pins: version, frozen file names and SRI, from dist/manifest.json.

The manifest is what the build wrote (beacon_js/build.mjs) and what tests/test_beacon_build.py
keeps true of the files, so the kit quotes it rather than hashing files itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Build:
    latest: str  # beacon.js / beacon.full.js
    frozen: str  # beacon-VERSION.js: never changes, so it can be pinned
    sri: str


@dataclass(frozen=True)
class BeaconRelease:
    version: str
    basic: Build
    full: Build | None


def load_release(dist_dir: Path) -> BeaconRelease | None:
    """None when there is no build (the kit then leaves the pinned variant out)."""
    try:
        manifest = json.loads((Path(dist_dir) / "manifest.json").read_text())
        basic = Build(manifest["files"]["latest"], manifest["files"]["frozen"], manifest["sri"])
        full_part = manifest.get("full")
        full = Build(full_part["files"]["latest"], full_part["files"]["frozen"], full_part["sri"]) if full_part else None
        return BeaconRelease(manifest["version"], basic, full)
    except (OSError, ValueError, KeyError, TypeError):
        return None
