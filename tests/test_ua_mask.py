"""The version memo's key in C (enrich/_ua_mask.c) against its Python form, the reference
(enrich/ua_versions.py version_masked_py): the labelled corpus, the traffic table, the
bench's unique User-Agents, hostile strings and random draws of the characters the rules
turn on (tokens, "/", spaces, digits, dots, hex, "(0x", ";", ")", non-ASCII, surrogates)."""

from __future__ import annotations

import random

import pytest

from bench.ua_corpus import load_corpus
from collector import native
from collector.enrich import ua_versions
from collector.enrich.ua_versions import version_masked, version_masked_py
from collector.native import c_module
from tests.ua_samples import UA_TABLE

C_MASK = c_module("collector.enrich._ua_mask")
needs_c = pytest.mark.skipif(C_MASK is None, reason="the install compiled nothing")

PIECES = [
    *sorted(ua_versions._VERSION_TOKENS), "Mozilla", "Android", "Build", "WeChat", "NetType", "Micromessenger",
    "/", "/", "/", " ", " ", ";", ")", "(", "(0x", "(0X", "0x", ".", "..", "1", "0", "42", "124.0.6367.82",
    "18002129", "28002F35", "abcdef", "ABCDEF", "G", "é", "中文", "\ud800", "\x00", "\t", "",
]


def masked_by_c(ua: str) -> str:
    assert C_MASK is not None
    return C_MASK.version_masked(ua, ua_versions._TOKENS, ua_versions._WECHAT)


def random_ua(rng: random.Random) -> str:
    """Loose pieces, and "token/version" runs in the shapes the rules turn on."""
    out = []
    for _ in range(rng.randrange(0, 30)):
        if rng.random() < 0.4:
            token = rng.choice(sorted(ua_versions._VERSION_TOKENS) + ["MicroMessenger"] * 4)
            version = ".".join(rng.choice(("1", "0", "42", "", "2025")) for _ in range(rng.randrange(1, 4)))
            out.append(token + "/" + version + rng.choice(("", "(0x1aF)", "(0x)", "(0xG)", "(0x12", "")))
        out.append(rng.choice(PIECES))
    return "".join(out)


def test_the_c_mask_is_built_with_the_compiled_modules():
    assert (C_MASK is not None) == native.in_use()
    assert (ua_versions._C_MASK is not None) == native.in_use()


@needs_c
def test_c_mask_equals_python_on_real_and_hostile_user_agents():
    from bench import traffic
    from bench.ippool import load_pool

    uas = [row[0] for row in UA_TABLE] + [e.ua for e in load_corpus()]
    uas += [r.visitor.ua for r in traffic.unique(traffic.Population(load_pool(), 1000, seed=9), 3000, 0)]
    uas += ["", " ", "/", "//", "Chrome/", "Chrome/1", "Chrome/1.", "Chrome/1.2/", "Chrome/.1 ", "x Chrome/1;",
            "MicroMessenger/8.0.33(0x18002129)", "MicroMessenger/8.0.33(0x)", "MicroMessenger/8.0.33(0x1",
            "MicroMessenger/8(0xAbC)x/", "Safari/604.1\ud800", "中文 Chrome/1.2 中文", "Chrome/1" * 2000, "\x00" * 100]
    changed = 0
    for ua in uas:
        assert masked_by_c(ua) == version_masked_py(ua), ua
        changed += masked_by_c(ua) != ua
    assert changed > len(uas) // 2  # most real UAs have a version masked: the test reaches that path


@needs_c
def test_c_mask_equals_python_on_random_strings():
    rng = random.Random(19)
    changed = 0
    for _ in range(60000):
        ua = random_ua(rng)
        expected = version_masked_py(ua)
        assert masked_by_c(ua) == expected, repr(ua)
        changed += expected != ua
    assert changed > 5000


@needs_c
def test_c_mask_refuses_wrong_arguments_and_returns_the_same_string_when_nothing_is_masked():
    ua = "Mozilla/5.0 (X11; Linux x86_64)"
    assert masked_by_c(ua) is ua
    assert version_masked(ua) == ua
    with pytest.raises(TypeError):
        C_MASK.version_masked(b"Chrome/1", ua_versions._TOKENS, ua_versions._WECHAT)  # type: ignore[union-attr,arg-type]
    with pytest.raises(TypeError):
        C_MASK.version_masked("Chrome/1", ["Chrome"], ua_versions._WECHAT)  # type: ignore[union-attr,arg-type]
    with pytest.raises(TypeError):
        C_MASK.version_masked("Chrome/1", ("Chrome", 1), ua_versions._WECHAT)  # type: ignore[union-attr,arg-type]
