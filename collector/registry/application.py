"""An application (§8.2 申请表), checked field by field before anything is stored.

The same check serves `POST /api/platforms/apply` (anyone on the internet) and
`collector platforms apply`: every field's type and length is bounded, unknown fields
are refused, and every problem is reported at once, each with its field and reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from collector.enrich import cn_regions
from collector.hit.protocol import EVENT_TYPES
from collector.registry.model import (
    ENVIRONMENTS,
    FOREIGN_ORIGIN_POLICIES,
    PLATFORM_ID,
    PLATFORM_TYPES,
    Contact,
    Platform,
    Scope,
    domain_problem,
)
from collector.store.names import RESOURCE_LABELS

MAX_DOMAINS = 50
TEXT_LIMITS = {"name": 100, "org": 100, "purpose": 500}
CONTACT_LIMITS = {"name": 50, "email": 254, "phone": 32}
BASIC_EVENTS = ("pageview", "engagement")
DEEP_EVENTS = ("click", "exposure", "media", "interaction")
# The Chinese names of the standard are accepted too: 资源平台 -> resource.
_TYPE_ALIASES = {chinese: kind for kind, chinese in PLATFORM_TYPES.items()}
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{4,31}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FIELDS = ("id", "name", "type", "org", "region", "domains", "environment", "scope", "contact", "foreign_origin", "purpose")


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str

    def as_json(self) -> dict:
        return {"field": self.field, "reason": self.reason}


class ApplicationInvalid(ValueError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))
        self.problems = problems


def region_problem(code: object) -> str | None:
    """A GB/T 2260 code at province, prefecture or county level that exists.

    cn_regions knows provinces and prefecture-level units (including county-level cities
    directly under a province); a county is accepted when its prefecture, or for a
    municipality its province, is known.
    """
    if not isinstance(code, str) or not re.fullmatch(r"\d{6}", code):
        return "must be a 6-digit GB/T 2260 code (e.g. 330000, 330100, 330106)"
    province = code[:2] + "0000"
    if province not in cn_regions.PROVINCES:
        return f"no province {province} in GB/T 2260"
    if code == province or code in cn_regions.CITIES:
        return None
    if code.endswith("00"):
        return f"no prefecture {code} in GB/T 2260"
    if code[:4] + "00" in cn_regions.CITIES:
        return None
    return f"no prefecture {code[:4]}00 for county {code}"


def parse_application(payload: Any) -> Platform:
    """A new platform record in state `applied`, or ApplicationInvalid with every problem."""
    problems: list[FieldProblem] = []
    if not isinstance(payload, dict):
        raise ApplicationInvalid([FieldProblem("(body)", "must be a JSON object")])
    for name in payload:
        if name not in FIELDS:
            problems.append(FieldProblem(str(name)[:64], "unknown field"))

    def need(name: str, check) -> Any:
        value, why = check(payload.get(name))
        if why:
            problems.append(FieldProblem(name, why))
        return value

    platform_id = need("id", _platform_id)
    values = dict(
        name=need("name", _text("name")),
        type=need("type", _platform_type),
        org=need("org", _text("org")),
        region=need("region", lambda v: (v, region_problem(v))),
        domains=need("domains", _domains),
        environment=need("environment", _choice(ENVIRONMENTS, "production")),
        scope=need("scope", _scope),
        contact=need("contact", _contact),
        foreign_origin=need("foreign_origin", _choice(FOREIGN_ORIGIN_POLICIES, "reject")),
        purpose=need("purpose", _text("purpose", required=False)),
    )
    if problems:
        raise ApplicationInvalid(problems)
    return Platform(id=platform_id, **values)


# Each check returns (value, problem or None).


def _platform_id(value: Any):
    if isinstance(value, str) and PLATFORM_ID.match(value):
        return value, None
    return None, "must match [a-z0-9][a-z0-9-]{0,31} (lower-case letters, digits, '-'; at most 32)"


def _text(name: str, required: bool = True):
    limit = TEXT_LIMITS[name]

    def check(value: Any):
        if value is None and not required:
            return "", None
        if not isinstance(value, str) or not value.strip():
            return None, "required text"
        if len(value) > limit:
            return None, f"at most {limit} characters"
        if _CONTROL.search(value):
            return None, "must not contain control characters"
        return value.strip(), None

    return check


def _platform_type(value: Any):
    kind = _TYPE_ALIASES.get(value, value) if isinstance(value, str) else None
    if kind in PLATFORM_TYPES:
        return kind, None
    return None, "must be one of resource (资源平台), service (服务平台), management (管理平台)"


def _choice(choices: dict, default: str):
    def check(value: Any):
        if value is None:
            return default, None
        if isinstance(value, str) and value in choices:
            return value, None
        return None, "must be one of " + ", ".join(choices)

    return check


def _domains(value: Any):
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_DOMAINS:
        return None, f"must be a list of 1-{MAX_DOMAINS} hosts"
    for entry in value:
        why = domain_problem(entry)
        if why:
            return None, f"{str(entry)[:64]!r}: {why}"
    return tuple(dict.fromkeys(value)), None


def _string_list(value: Any, allowed: tuple[str, ...]) -> tuple[tuple[str, ...] | None, str | None]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or len(value) > len(allowed) or not all(isinstance(v, str) for v in value):
        return None, "must be a list of: " + ", ".join(allowed)
    unknown = [v for v in value if v not in allowed]
    if unknown:
        return None, f"unknown {unknown[0][:32]!r}; known: " + ", ".join(allowed)
    return tuple(v for v in allowed if v in value), None


def _scope(value: Any):
    if value is None:
        return Scope(), None
    if not isinstance(value, dict) or set(value) - {"basic", "deep", "events", "dimensions", "page_codes"}:
        return None, "must be an object with basic, deep, events, dimensions, page_codes"
    basic, deep = value.get("basic", True), value.get("deep", False)
    page_codes = value.get("page_codes", False)
    if not all(isinstance(flag, bool) for flag in (basic, deep, page_codes)):
        return None, "basic, deep and page_codes must be true or false"
    events, why = _string_list(value.get("events", list(BASIC_EVENTS)), tuple(sorted(EVENT_TYPES)))
    if events is None:  # (then `why` says why)
        return None, f"events {why}"
    dimensions, why = _string_list(value.get("dimensions", []), RESOURCE_LABELS)
    if dimensions is None:
        return None, f"dimensions {why}"
    deep_declared = [e for e in events if e in DEEP_EVENTS]
    if deep_declared and not deep:
        return None, f"events {', '.join(deep_declared)} need the deep tag: set deep to true"
    if dimensions and not {"media", "interaction"} & set(events):
        return None, "resource dimensions need media or interaction events"
    if not basic and not deep:
        return None, "declare the basic tag, the deep tag, or both"
    return Scope(basic, deep, events, dimensions, page_codes), None


def _contact(value: Any):
    if not isinstance(value, dict) or set(value) - set(CONTACT_LIMITS):
        return None, "must be an object with name and email and/or phone"
    for key, limit in CONTACT_LIMITS.items():
        item = value.get(key, "")
        if not isinstance(item, str) or len(item) > limit or _CONTROL.search(item):
            return None, f"{key} must be text of at most {limit} characters"
    if not value.get("name", "").strip():
        return None, "name is required"
    email, phone = value.get("email", ""), value.get("phone", "")
    if not email and not phone:
        return None, "give an email or a phone number"
    if email and not _EMAIL.match(email):
        return None, "email is not an e-mail address"
    if phone and not _PHONE.match(phone):
        return None, "phone must be digits, spaces, (), - and an optional leading +"
    return Contact(value["name"].strip(), email, phone), None
