"""Groups of platforms: what `group=` means in the read API and the reports (pure).

A group id has one syntax (docs/groups-and-reports.md):

    all                 every platform
    province:33         platforms registered in province 33 (GB/T 2260, first two digits)
    prefecture:3301     platforms registered in prefecture 3301 (its counties included)
    org:NAME            platforms whose organisation is NAME, exactly
    set:NAME            a named set an administrator made (registry/store.py keeps it)

Members are production platforms that ever held an app key (their counts exist); a
revoked platform keeps its past in its groups. Test platforms count apart (ID~test) and
belong to no region, organisation or `all` group; a named set may list any platform.
The figures of a group are read under its members' series (model.Platform.series).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from collector.enrich import cn_regions
from collector.registry.model import KEYED_STATES, PLATFORM_ID, REVOKED, Platform, RegistrySnapshot

KINDS = ("all", "province", "prefecture", "org", "set")
SET_NAME = PLATFORM_ID  # [a-z0-9][a-z0-9-]{0,31}, like a platform id
MAX_SET_PLATFORMS = 10_000
MAX_TITLE = 128
MAX_ORG = 200
ALL_NAME = "全部平台 all platforms"
_PROVINCE = re.compile(r"^[0-9]{2}$")
_PREFECTURE = re.compile(r"^[0-9]{4}$")


class BadGroup(ValueError):
    """A group id or a set that is not well formed; the message says why."""


@dataclass(frozen=True)
class GroupRef:
    id: str
    kind: str
    name: str
    platforms: tuple[str, ...]  # platform ids, sorted

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "name": self.name, "platforms": list(self.platforms)}


@dataclass(frozen=True)
class NamedSet:
    name: str
    title: str
    platforms: tuple[str, ...]
    created_at: float = 0.0
    updated_at: float = 0.0
    actor: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "platforms": list(self.platforms),
                "created_at": self.created_at, "updated_at": self.updated_at, "actor": self.actor}

    @classmethod
    def from_dict(cls, data: Mapping) -> NamedSet:
        return cls(str(data["name"]), str(data.get("title") or data["name"]), tuple(data.get("platforms", ())),
                   float(data.get("created_at", 0.0)), float(data.get("updated_at", 0.0)), str(data.get("actor", "")))


def parse_group_id(group_id: str) -> tuple[str, str]:
    """(kind, value) of a group id, or BadGroup saying what the syntax is."""
    if group_id == "all":
        return "all", ""
    kind, _, value = group_id.partition(":")
    valid = {
        "province": lambda v: bool(_PROVINCE.match(v)),
        "prefecture": lambda v: bool(_PREFECTURE.match(v)),
        "org": lambda v: 0 < len(v) <= MAX_ORG and v.isprintable(),
        "set": lambda v: bool(SET_NAME.match(v)),
    }
    if kind not in valid or not valid[kind](value):
        raise BadGroup(f"group {group_id[:80]!r} is not one of: all, province:NN (2 digits, GB/T 2260), "
                       "prefecture:NNNN (4 digits), org:NAME, set:NAME")
    return kind, value


def check_set(name: str, title: str, platforms: Iterable[object]) -> tuple[str, tuple[str, ...]]:
    """The set's title and sorted distinct platform ids, or BadGroup."""
    if not isinstance(name, str) or not SET_NAME.match(name):
        raise BadGroup("a set's name is 1-32 of a-z, 0-9 and '-', starting with a letter or digit")
    if not isinstance(title, str) or len(title) > MAX_TITLE or not title.isprintable():
        raise BadGroup(f"title: printable text of at most {MAX_TITLE} characters")
    ids = list(platforms)
    if not ids or len(ids) > MAX_SET_PLATFORMS:
        raise BadGroup(f"platforms: 1 to {MAX_SET_PLATFORMS} platform ids")
    valid = {p for p in ids if isinstance(p, str) and PLATFORM_ID.match(p)}
    bad = [p for p in ids if p not in valid]
    if bad:
        raise BadGroup(f"platforms: {str(bad[0])[:40]!r} is not a platform id")
    return title or name, tuple(sorted(valid))


def counted(platform: Platform) -> bool:
    """Whether the platform may have counts: it holds, or once held, an app key."""
    return platform.state in KEYED_STATES or platform.state == REVOKED


def _in_regions(platform: Platform) -> bool:
    return counted(platform) and platform.environment == "production"


def region_name(code: str) -> str:
    """浙江省 for 33 or 330000, 杭州市 for 3301; the code itself when unknown."""
    return cn_regions.name_of(code.ljust(6, "0")) or code


def resolve(group_id: str, snapshot: RegistrySnapshot, sets: Mapping[str, NamedSet]) -> GroupRef:
    """The group's name and members, or BadGroup (bad syntax, or no such set)."""
    kind, value = parse_group_id(group_id)
    platforms = snapshot.platforms.values()
    if kind == "set":
        found = sets.get(value)
        if found is None:
            raise BadGroup(f"no set {value!r}; an administrator creates it: collector groups create {value} --platforms A,B")
        return GroupRef(group_id, kind, found.title, found.platforms)
    if kind == "all":
        members, name = [p for p in platforms if _in_regions(p)], ALL_NAME
    elif kind == "org":
        members, name = [p for p in platforms if _in_regions(p) and p.org == value], value
    else:
        members, name = [p for p in platforms if _in_regions(p) and p.region.startswith(value)], region_name(value)
    return GroupRef(group_id, kind, name, tuple(sorted(p.id for p in members)))


def every_group(snapshot: RegistrySnapshot, sets: Mapping[str, NamedSet]) -> list[GroupRef]:
    """`all`, every province, prefecture and organisation holding a platform, every set; by id."""
    ids = {"all"}
    for p in snapshot.platforms.values():
        if _in_regions(p):
            ids.add("org:" + p.org)
            if _PREFECTURE.match(p.region[:4]) and len(p.region) == 6:
                ids.add("province:" + p.region[:2])
                if p.region[2:4] != "00":  # a province-level registration is in no prefecture
                    ids.add("prefecture:" + p.region[:4])
    ids.update("set:" + name for name in sets)
    groups = []
    for group_id in sorted(ids):
        try:
            groups.append(resolve(group_id, snapshot, sets))
        except BadGroup:  # an org name the syntax refuses (stored before the checks): not listable
            continue
    return groups


def series_of(group: GroupRef, snapshot: RegistrySnapshot) -> list[str]:
    """The app names the group's counts are stored under (a test platform's is ID~test)."""
    found = [snapshot.platforms.get(pid) for pid in group.platforms]
    return sorted(p.series if p is not None else pid for p, pid in zip(found, group.platforms, strict=True))


def readable_by(group: GroupRef, platform_id: str | None) -> bool:
    """An administrator (None) reads every group; a platform's credential only a group whose
    every platform is its own — any other would reveal others' figures (a group minus itself)."""
    return platform_id is None or (bool(group.platforms) and set(group.platforms) <= {platform_id})
