"""The platform record, its life cycle, and what the hit path asks of the registry.

The platform id is the stable name of a platform's data: its app key can be rotated
(the retired key stays valid for an overlap), the id never changes, so counting under
the id keeps one series across rotations (hit/admission.py). Everything a hit path needs
comes in one `RegistrySnapshot` (store.load_all): `platform_for_key` maps a key to its
platform, and `origin_allowed` says whether a page's host belongs to it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The standard's §5.2 kinds of access platform.
PLATFORM_TYPES = {"resource": "资源平台", "service": "服务平台", "management": "管理平台"}
ENVIRONMENTS = {"production": "生产", "test": "测试"}
# What to do with a hit whose page is on none of the platform's domains.
FOREIGN_ORIGIN_POLICIES = {"reject": "拒绝", "flag": "计数并标记"}

APPLIED, APPROVED, REJECTED, ACTIVE, SUSPENDED, REVOKED = "applied", "approved", "rejected", "active", "suspended", "revoked"
STATE_NAMES = {
    APPLIED: "已申请", APPROVED: "已批准", REJECTED: "已驳回",
    ACTIVE: "运行中", SUSPENDED: "已暂停", REVOKED: "已注销",
}
# action -> (states it may start from, state it leads to). Revoked is final.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "approve": (frozenset({APPLIED}), APPROVED),
    "reject": (frozenset({APPLIED}), REJECTED),
    "activate": (frozenset({APPROVED}), ACTIVE),
    "suspend": (frozenset({ACTIVE}), SUSPENDED),
    "resume": (frozenset({SUSPENDED}), ACTIVE),
    "revoke": (frozenset(STATE_NAMES) - {REVOKED}, REVOKED),
}
# States in which the platform holds an app key (issued at approval).
KEYED_STATES = frozenset({APPROVED, ACTIVE, SUSPENDED})
# States whose hits count, for the enforcement on the hit path.
COUNTING_STATES = frozenset({APPROVED, ACTIVE})

PLATFORM_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# A test-environment platform's counts are kept apart, under ID~test: ids are
# [a-z0-9-], so such a name is never another platform's id.
TEST_SERIES_SUFFIX = "~test"


class TransitionError(ValueError):
    """An action the platform's state does not allow; the message says which and why."""


@dataclass(frozen=True)
class Scope:
    """What the platform declared it collects (§8.2 采集参数)."""

    basic: bool = True
    deep: bool = False
    events: tuple[str, ...] = ("pageview", "engagement")
    dimensions: tuple[str, ...] = ()  # resource labels: rtype, subject, stage, source
    page_codes: bool = False  # its pages carry page codes (pc): health checks that they arrive


@dataclass(frozen=True)
class Contact:
    name: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class RetiredKey:
    """A rotated-out app key, still accepted until `until` (epoch seconds)."""

    key: str
    until: float


@dataclass(frozen=True)
class Platform:
    id: str
    name: str
    type: str
    org: str
    region: str  # GB/T 2260: province, prefecture or county
    domains: tuple[str, ...]
    environment: str = "production"
    scope: Scope = field(default_factory=Scope)
    contact: Contact = field(default_factory=Contact)
    foreign_origin: str = "reject"
    purpose: str = ""
    state: str = APPLIED
    app_key: str = ""
    retired_keys: tuple[RetiredKey, ...] = ()
    kit_token_sha256: str = ""
    # Its read token opens its own figures in the read API (/api/stats, /api/apps, PUT
    # /api/catalogue); issued on demand (`platforms read-token ID`), stored hashed.
    read_token_sha256: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    note: str = ""  # the reason given with the last state change

    def key_valid(self, app_key: str, now: float) -> bool:
        """The current key, or a retired one within its overlap period."""
        if app_key and app_key == self.app_key:
            return True
        return any(r.key == app_key and now < r.until for r in self.retired_keys)

    @property
    def series(self) -> str:
        """The app name the platform's counts are stored under: its id, ID~test for test traffic.

        Never its app key: a rotation must not split the data (hit/admission.py)."""
        return self.id + TEST_SERIES_SUFFIX if self.environment == "test" else self.id

    def keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.app_key, *(r.key for r in self.retired_keys)) if k)

    def replace(self, **changes: Any) -> Platform:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def public_dict(self) -> dict:
        """The record as shown to people and APIs: without the tokens' hashes."""
        shown = self.as_dict()
        shown.pop("kit_token_sha256")
        shown.pop("read_token_sha256")
        return shown

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Platform:
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["domains"] = tuple(values.get("domains", ()))
        scope: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.get("scope", {}).items()}
        values["scope"] = Scope(**scope)
        values["contact"] = Contact(**data.get("contact", {}))
        values["retired_keys"] = tuple(RetiredKey(**r) for r in data.get("retired_keys", ()))
        return cls(**values)


def next_state(platform: Platform, action: str) -> str:
    """The state `action` leads to, or TransitionError saying why it is refused."""
    if action not in TRANSITIONS:
        raise TransitionError(f"unknown action {action!r}; known: {', '.join(TRANSITIONS)}")
    allowed_from, target = TRANSITIONS[action]
    if platform.state not in allowed_from:
        starts = ", ".join(sorted(allowed_from))
        raise TransitionError(
            f"cannot {action} platform {platform.id!r}: it is {platform.state} ({STATE_NAMES[platform.state]}); "
            f"{action} needs one of: {starts}"
        )
    return target


# ---- domains ----------------------------------------------------------------------------

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")
_HOST_CHARS = re.compile(r"^[a-z0-9.:-]+$")
_IPV4 = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$")


def domain_problem(pattern: str) -> str | None:
    """Why `pattern` is not an allowed-domain entry, or None.

    Entries are exact hosts (`www.zjer.cn`, `localhost`, `127.0.0.1`) or a wildcard over
    every subdomain (`*.zjer.cn`). A wildcard needs at least two labels after `*.`, so
    nobody can claim a whole public suffix such as `*.cn` or `*.edu.cn`'s parent.
    """
    if not isinstance(pattern, str) or not pattern or len(pattern) > 253:
        return "must be a host name of 1-253 characters"
    if pattern != pattern.lower():
        return "must be lower case (use the punycode form for non-ASCII names)"
    base = pattern[2:] if pattern.startswith("*.") else pattern
    if not (_HOSTNAME.match(base) or _IPV4.match(base)):
        return "must be a host (www.example.edu.cn) or a wildcard (*.example.edu.cn), without scheme, port or path"
    if pattern.startswith("*.") and (base.count(".") < 1 or _IPV4.match(base)):
        return "a wildcard needs at least two labels after '*.' (e.g. *.zjer.cn)"
    return None


def normalize_host(host: str) -> str:
    """A host as compared: lower case, no port, no trailing dot, no IPv6 brackets."""
    host = (host or "").strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        # Any depth of subdomain, never the bare domain nor a look-alike (evilzjer.cn).
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def origin_allowed(platform: Platform, host: str) -> bool:
    """Whether a page on `host` (from Origin or Referer) belongs to `platform`."""
    host = normalize_host(host)
    # A host from a header is hostile input: only host characters can match anything
    # (a "host" of "*.zjer.cn" must not match its own pattern).
    return bool(_HOST_CHARS.match(host)) and any(host_matches(pattern, host) for pattern in platform.domains)


# ---- what the hit path loads ------------------------------------------------------------


@dataclass(frozen=True)
class RegistrySnapshot:
    """Everything the hit path needs, loaded in one call (store.load_all).

    `version` is bumped by every change: a worker that polls it reloads within its poll
    interval. `by_key` maps every current and retired app key to its platform id.
    """

    version: int
    platforms: dict[str, Platform]
    by_key: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, version: int, platforms: Iterable[Platform]) -> RegistrySnapshot:
        by_id = {p.id: p for p in platforms}
        by_key = {key: p.id for p in by_id.values() for key in p.keys()}
        return cls(version, by_id, by_key)

    def platform_for_key(self, app_key: str, now: float) -> Platform | None:
        """The platform `app_key` belongs to, in whatever state, or None.

        A retired key past its overlap belongs to nobody any more. The caller decides
        what the platform's state means for the hit (COUNTING_STATES).
        """
        platform = self.platforms.get(self.by_key.get(app_key, ""))
        return platform if platform is not None and platform.key_valid(app_key, now) else None
