"""The registry's pure parts: the record and its states, domains, applications, keys, the kit."""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT, FakeClock

from collector.hit.protocol import usable_app_key
from collector.hit.ratelimit import TokenBuckets
from collector.registry import credentials
from collector.registry.application import ApplicationInvalid, parse_application, region_problem
from collector.registry.kit import KitUnavailable, build_kit
from collector.registry.kit_page import render_html, render_markdown
from collector.registry.model import (
    TRANSITIONS,
    Platform,
    RegistrySnapshot,
    RetiredKey,
    Scope,
    TransitionError,
    domain_problem,
    next_state,
    origin_allowed,
)
from collector.registry.release import load_release

DIST = ROOT / "beacon_js" / "dist"


def application(**changes) -> dict:
    base = {
        "id": "zjer", "name": "浙江教育资源网", "type": "resource", "org": "浙江省教育技术中心", "region": "330000",
        "domains": ["www.zjer.cn", "*.zjer.cn"], "contact": {"name": "张三", "email": "zs@zjer.cn"},
    }
    base.update(changes)
    return base


def platform(**changes) -> Platform:
    return parse_application(application()).replace(**{"state": "approved", "app_key": "KEY-1", **changes})


# ---- domains ----------------------------------------------------------------------------


@pytest.mark.parametrize("host, allowed", [
    ("www.zjer.cn", True), ("WWW.ZJER.CN", True), ("www.zjer.cn:8443", True), ("www.zjer.cn.", True),
    ("a.zjer.cn", True), ("a.b.zjer.cn", True),  # the wildcard covers every depth
    ("zjer.cn", False),  # but not the bare domain
    ("evilzjer.cn", False), ("zjer.cn.evil.com", False), ("www.zjer.cn.evil.com", False),
    ("", False), ("*.zjer.cn", False),
])
def test_origin_allowed_exact_hosts_and_wildcards(host, allowed):
    assert origin_allowed(platform(), host) is allowed


def test_origin_allowed_ip_and_localhost():
    p = platform(domains=("localhost", "127.0.0.1"))
    assert origin_allowed(p, "localhost:8080") and origin_allowed(p, "127.0.0.1")
    assert not origin_allowed(p, "127.0.0.2") and not origin_allowed(p, "localhost.evil.com")


@pytest.mark.parametrize("pattern", ["*.cn", "*", "https://www.zjer.cn", "www.zjer.cn/path", "www.zjer.cn:80",
                                     "WWW.zjer.cn", "*.*.zjer.cn", "a..b", "-a.cn", "*.1.2.3.4", "x" * 254])
def test_bad_domain_patterns_are_refused(pattern):
    assert domain_problem(pattern)


# ---- states -----------------------------------------------------------------------------


def test_transitions_follow_the_state_machine():
    p = platform(state="applied")
    assert next_state(p, "approve") == "approved" and next_state(p, "reject") == "rejected"
    assert next_state(p.replace(state="approved"), "activate") == "active"
    assert next_state(p.replace(state="active"), "suspend") == "suspended"
    assert next_state(p.replace(state="suspended"), "resume") == "active"
    for state in ("applied", "approved", "rejected", "active", "suspended"):
        assert next_state(p.replace(state=state), "revoke") == "revoked"


@pytest.mark.parametrize("state, action", [
    ("applied", "activate"), ("applied", "suspend"), ("approved", "approve"), ("rejected", "approve"),
    ("active", "resume"), ("suspended", "suspend"), ("revoked", "resume"), ("revoked", "revoke"), ("revoked", "approve"),
])
def test_invalid_transitions_are_refused_with_the_reason(state, action):
    with pytest.raises(TransitionError, match=f"cannot {action} platform 'zjer': it is {state}"):
        next_state(platform(state=state), action)


def test_revoked_is_final():
    assert all("revoked" not in starts for starts, _ in TRANSITIONS.values())


def test_snapshot_resolves_current_and_retired_keys_until_the_overlap_ends():
    p = platform(app_key="NEW", retired_keys=(RetiredKey("OLD", 1000.0),))
    snapshot = RegistrySnapshot.of(7, [p])
    assert snapshot.platform_for_key("NEW", 5000.0) is p
    assert snapshot.platform_for_key("OLD", 999.0) is p
    assert snapshot.platform_for_key("OLD", 1000.0) is None
    assert snapshot.platform_for_key("nobody", 0.0) is None


def test_record_round_trips_through_json():
    p = platform(retired_keys=(RetiredKey("OLD", 1.5),), scope=Scope(True, True, ("media",), ("subject",)))
    assert Platform.from_dict(json.loads(json.dumps(p.as_dict()))) == p
    assert "kit_token_sha256" not in p.public_dict()


# ---- applications -----------------------------------------------------------------------


def test_a_good_application_becomes_an_applied_record():
    scope = {"deep": True, "events": ["media", "pageview"], "dimensions": ["subject"]}
    p = parse_application(application(type="服务平台", environment="test", scope=scope))
    assert (p.state, p.type, p.environment, p.foreign_origin) == ("applied", "service", "test", "reject")
    assert p.scope == Scope(True, True, ("media", "pageview"), ("subject",))


def test_every_problem_is_reported_with_its_field():
    bad = application(id="Bad_Id", name="x" * 101, type="school", region="991234", domains=["*.cn"],
                      environment="staging", contact={"name": "a"}, scope={"events": ["click"]}, extra=1)
    with pytest.raises(ApplicationInvalid) as caught:
        parse_application(bad)
    fields = {p.field for p in caught.value.problems}
    assert fields == {"id", "name", "type", "region", "domains", "environment", "contact", "scope", "extra"}


@pytest.mark.parametrize("payload", [None, [], "x", 1, {"id": ["a"]}, {"domains": {"a": 1}}, {"contact": "me"},
                                     {"scope": {"events": "a" * 10000}}, {"name": "\x00"}])
def test_hostile_applications_are_refused_not_crashed(payload):
    with pytest.raises(ApplicationInvalid):
        parse_application(payload)


@pytest.mark.parametrize("code, ok", [("330000", True), ("330100", True), ("330106", True), ("110101", True),
                                      ("429004", True), ("990000", False), ("339900", False), ("33010", False),
                                      (330000, False), ("3301O6", False)])
def test_region_codes_are_checked_against_gbt_2260(code, ok):
    assert (region_problem(code) is None) is ok


# ---- keys and tokens --------------------------------------------------------------------


def test_app_keys_are_unguessable_and_fit_the_protocol():
    keys = {credentials.new_app_key() for _ in range(1000)}
    assert len(keys) == 1000
    for key in keys:
        assert usable_app_key(key) and re.fullmatch(r"[A-Za-z0-9_-]{32}", key)  # 24 bytes = 192 bits


def test_tokens_match_only_their_hash():
    token = credentials.new_token(credentials.ADMIN_TOKEN_PREFIX)
    stored = [credentials.token_hash("other"), credentials.token_hash(token)]
    assert credentials.token_matches(token, stored) == stored[1]
    assert credentials.token_matches(token + "x", stored) is None
    assert credentials.token_matches("", stored) is None


def test_token_buckets_allow_a_burst_then_one_per_interval():
    clock = FakeClock(0.0)
    buckets = TokenBuckets(rate_per_second=1 / 360, burst=3, clock=clock, max_clients=2)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(360)
    clock.advance(360)
    assert buckets.take("a") == 0
    buckets.take("b"), buckets.take("c")  # "a" is forgotten: memory stays bounded
    assert len(buckets) <= 2


# ---- the kit ----------------------------------------------------------------------------


def test_kit_snippets_carry_the_key_and_the_collector_host():
    kit = build_kit(platform(app_key="AbC-123_x"), "https://collector.example.edu.cn/", load_release(DIST))
    ours, aplus, pinned = (s.code for s in kit.snippets)
    assert "'aplus_queue'" in aplus and "['appKey', 'AbC-123_x']" in aplus
    assert "['aplus-rhost-v', 'collector.example.edu.cn']" in aplus
    assert "j.src='https://collector.example.edu.cn/beacon.js'" in aplus
    assert "'eb_queue'" in ours and "['appKey', 'AbC-123_x']" in ours
    assert "['appKey', 'AbC-123_x']" in pinned


@pytest.mark.parametrize("deep", [False, True])
def test_pinned_snippet_uses_the_manifests_sri(deep):
    manifest = json.loads((DIST / "manifest.json").read_text())
    part = manifest["full"] if deep else manifest
    p = platform(scope=Scope(True, deep, ("pageview",)))
    pinned = build_kit(p, "https://c.example.cn", load_release(DIST)).snippets[-1].code
    assert f'integrity="{part["sri"]}"' in pinned
    assert f'src="https://c.example.cn/{part["files"]["frozen"]}"' in pinned


def test_deep_commands_follow_the_declared_scope():
    none = build_kit(platform(), "https://c.example.cn", None)
    assert none.deep == () and "beacon.js" in none.snippets[0].code and len(none.snippets) == 2
    declared = platform(scope=Scope(True, True, ("click", "media", "pageview"), ("subject",)))
    text = "\n".join(s.code for s in build_kit(declared, "https://c.example.cn", None).deep)
    assert "setUser" in text and "data-eb-click" in text and "data-eb-rid" in text and 'data-eb-subj="math"' in text
    for absent in ("data-eb-stage", "data-eb-rt", "data-eb-track", "'rate'", "'record'"):
        assert absent not in text
    everything = platform(scope=Scope(True, True, ("click", "custom", "exposure", "interaction", "media"),
                                      ("rtype", "subject", "stage", "source")))
    text = "\n".join(s.code for s in build_kit(everything, "https://c.example.cn", None).deep)
    for present in ("data-eb-track", "data-eb-stage", "data-eb-rt", "data-eb-src", "'rate'", "'share'", "'record'"):
        assert present in text


def test_developer_page_is_chinese_first_and_escapes_the_record():
    p = platform(name="<script>alert(1)</script>平台")
    kit = build_kit(p, "https://c.example.cn", load_release(DIST))
    page = render_html(kit)
    assert '<html lang="zh-CN">' in page and "<script>alert(1)" not in page
    assert page.index("接入开发文档") < page.index("Integration kit")
    assert page.index("验证清单") < page.index("Verification checklist")
    assert "?eb_debug=1" in page and "KEY-1" in page and "https://c.example.cn/c" in page
    md = render_markdown(kit)
    assert md.index("埋码") < md.index("The snippet") and "```html" in md


def test_no_kit_before_approval_or_for_a_bad_url():
    with pytest.raises(KitUnavailable):
        build_kit(platform(state="applied", app_key=""), "https://c.example.cn", None)
    with pytest.raises(KitUnavailable):
        build_kit(platform(), "javascript:alert(1)//'", None)
