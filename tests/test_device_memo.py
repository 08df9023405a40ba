"""The version memo (enrich/device.py, issue 17): a new User-Agent that differs from a known
one only in the digits of its browser versions takes the known one's answer, unparsed.

It may do so only where the answer cannot differ. Checked here on the labelled corpus
(bench/ua_corpus.py: ~39,000 real User-Agents of every kind) and the traffic table: the
memo's answers equal the full parse's, and random digits in every masked place change no
answer. And pairs whose answers differ by digits alone are kept apart by the key.
"""

from __future__ import annotations

import random
import re

import pytest

from bench.ua_corpus import load_corpus
from collector.enrich.device import DeviceClassifier, _analyse, version_masked
from tests.ua_samples import UA_TABLE

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{} Safari/537.36"
WECHAT = (
    "Mozilla/5.0 (Linux; Android 13; V2241A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Version/4.0 Chrome/{} Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2307"
    " MicroMessenger/{}(0x28003035) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)


def android(model: str) -> str:
    return (f"Mozilla/5.0 (Linux; Android 4.1.1; {model} Build/JRO03H) AppleWebKit/534.30 (KHTML, like Gecko)"
            " Version/4.0 Safari/534.30")


def nokia(version: str) -> str:
    return ("Mozilla/5.0 (Symbian/3; Series60/5.2 Nokia500/010.029; Profile/MIDP-2.1 Configuration/CLDC-1.1 )"
            f" AppleWebKit/533.4 (KHTML, like Gecko) NokiaBrowser/{version} Mobile Safari/533.4 3gpp-gba")


def uc_browser(build: str) -> str:
    return ("Mozilla/5.0 (Linux; U; Android 4.0.4; en-us ; ALLVIEW SPEEDI Build/IMM76D) AppleWebKit/533.1"
            f" (KHTML, like Gecko) Version/4.0 UCBrowser/8.5.3.{build}/145/355 Mobile Safari/533.1")


# Pairs that differ by digits alone and are classified differently.
APART = [
    (android("Maxtron T1"), android("Maxtron T4")),  # a model name: Matomo's list has both
    (nokia("7.3.1.37"), nokia("7.4.1.37")),  # NokiaBrowser/7.3 is Symbian^3 Anna, 7.4 Belle
    (uc_browser("246"), uc_browser("008")),  # "008/" is a crawler's pattern
]


def test_version_masked_masks_browser_versions_only():
    assert version_masked(CHROME.format("124.0.6367.82")) == CHROME.format("000.0.0000.00").replace(
        "AppleWebKit/537.36", "AppleWebKit/000.00").replace("Safari/537.36", "Safari/000.00")
    masked = version_masked(WECHAT.format("120.0.6099.193", "8.0.47.2560"))
    assert "Chrome/000.0.0000.000 " in masked and "MicroMessenger/0.0.00.0000(0x00000000)" in masked
    # WeChat's hex client version: class for class (digits 0, A-F A, a-f a), only in "(0x…)".
    assert "MicroMessenger/0.0.00(0x0000000A) " in version_masked("MicroMessenger/7.0.20(0x6700143B) NetType/WIFI")
    assert version_masked("MicroMessenger/8.0.1(0x1G) x") == "MicroMessenger/0.0.0(0x1G) x"
    assert version_masked("QQ/8.0.1(0x18002129) x") == "QQ/0.0.0(0x18002129) x"
    # A token right after a "/" (Xiaomi's browser) counts too.
    assert version_masked("Safari/537.36 XiaoMi/MiuiBrowser/17.1.80321") == "Safari/000.00 XiaoMi/MiuiBrowser/00.0.00000"
    # Not the platform (OS version, model, build), not tokens outside the list.
    assert "(Linux; Android 13; V2241A Build/TP1A.220624.014; wv)" in masked
    assert "MMWEBID/2307" in masked and "NetType/WIFI" in masked
    # A version running on into "/" stays.
    assert " UCBrowser/8.5.3.246/145/355 " in version_masked(uc_browser("246"))
    assert version_masked("curl/8.4.0") == "curl/8.4.0"
    # Digits for digits: versions of other lengths are other keys (ua-parser's gaps are bounded).
    assert version_masked(CHROME.format("99.0.4844.51")) != version_masked(CHROME.format("100.0.4844.51"))
    assert version_masked("") == ""


@pytest.mark.parametrize("a, b", APART)
def test_uas_whose_answers_differ_by_digits_are_kept_apart(a, b):
    full = DeviceClassifier(cache_size=0, memo_size=0)
    assert full.classify(a) != full.classify(b)  # the pair is one the memo must not merge
    assert version_masked(a) != version_masked(b)
    for first, second in ((a, b), (b, a)):
        memo = DeviceClassifier(cache_size=0)
        assert memo.classify(first) == full.classify(first)
        assert memo.classify(second) == full.classify(second)


IPHONE_WECHAT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
                 " Mobile/15E148 MicroMessenger/{}({}) NetType/WIFI Language/zh_CN")
XIAOMI = ("Mozilla/5.0 (Linux; U; Android 13; zh-cn; M2012K11AC Build/SKQ1.220303.001) AppleWebKit/537.36"
          " (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.127 Mobile Safari/537.36 XiaoMi/MiuiBrowser/{}")


@pytest.mark.parametrize("first, again", [
    (IPHONE_WECHAT.format("8.0.33", "0x18002129"), IPHONE_WECHAT.format("8.0.34", "0x18002235")),  # a new WeChat build
    (XIAOMI.format("17.1.80321"), XIAOMI.format("17.4.80711")),  # a new Xiaomi browser build
])
def test_a_new_app_build_is_answered_from_the_memo(first, again):
    c = DeviceClassifier()
    assert c.classify(again) == c.classify(first) == DeviceClassifier(cache_size=0, memo_size=0).classify(again)
    hits, misses, _, _ = c.memo_info()
    assert (hits, misses) == (1, 1)


def test_a_new_browser_version_is_answered_from_the_memo():
    c = DeviceClassifier()
    first = c.classify(WECHAT.format("120.0.6099.193", "8.0.47.2560"), "?1", 393, 873, 5)
    again = c.classify(WECHAT.format("121.0.6167.184", "8.0.48.2580"), "?1", 393, 873, 5)
    assert again == first == ("mobile", "WeChat", "Android")
    hits, misses, _, size = c.memo_info()
    assert (hits, misses, size) == (1, 1, 1)
    # Other hints for a known User-Agent: a new (UA, hints) key above, the same analysis.
    assert c.classify(WECHAT.format("120.0.6099.193", "8.0.47.2560"), "?0", 1920, 1080, 0).device_class == "pc"
    assert c.memo_info()[:2] == (2, 1)


def test_the_memo_is_bounded_and_can_be_off():
    c = DeviceClassifier(cache_size=0, memo_size=16)
    for i in range(200):  # each a new key: the number is not a listed browser's version
        c.classify(f"{CHROME.format('124.0.0.0')} App/{i}x")
    assert c.memo_info().currsize <= 16
    off = DeviceClassifier(memo_size=0)
    off.classify(CHROME.format("124.0.0.0"))
    assert off.memo_info().currsize == 0


def test_hostile_user_agents():
    c = DeviceClassifier()
    for ua in ("Chrome/" + "1." * 400, "Chrome/1\ud800 Safari/2", "Safari/١٢٣ Chrome/9", "Chrome/ Safari/.", " " * 50):
        version_masked(ua)
        assert c.classify(ua) == DeviceClassifier(cache_size=0, memo_size=0).classify(ua)


@pytest.fixture(scope="module")
def corpus_uas() -> list[str]:
    uas = {e.ua for e in load_corpus()} | {row[0] for row in UA_TABLE}
    assert len(uas) > 30000
    return sorted(uas)


def test_memo_answers_equal_full_parse_on_the_corpus(corpus_uas):
    """Every User-Agent through one memo (first come, first kept) against its own parse."""
    memo = DeviceClassifier(cache_size=0, memo_size=len(corpus_uas))
    rng = random.Random(17)
    order = corpus_uas[:]
    rng.shuffle(order)
    wrong = [ua for ua in order if tuple(memo.classify(ua)) != _refined(ua)]
    assert wrong == []
    assert memo.memo_info().hits > 0


# A probe: every character the key could mask made one that it changes when it masks it —
# each digit 9, each hex letter of a "(0x…)" F or f ("0x" itself kept).
_MASKABLE = re.compile(r"\(0x([0-9A-Fa-f]+)\)|\d")
_TO_PROBE = str.maketrans("012345678ABCDEabcde", "999999999FFFFFfffff")
_SAME_CLASS = {"0": "0123456789", "A": "ABCDEF", "a": "abcdef"}


def _probe(ua: str) -> str:
    return _MASKABLE.sub(lambda m: "(0x" + m.group(1).translate(_TO_PROBE) + ")" if m.group(1) else "9", ua)


def test_random_digits_in_masked_places_change_no_answer(corpus_uas):
    """The key's claim, tested where it could fail: each User-Agent with the digits of its
    masked versions (and WeChat hex versions) replaced by random ones of the same class (the
    same key) keeps its answer."""
    rng = random.Random(11)
    varied = wrong = 0
    for ua in corpus_uas:
        key = version_masked(ua)
        if key == ua:
            continue
        # The masked places: where the key of the probe differs from the probe (a 9, F or f
        # masked to 0, A or a); there, a random character of the same class.
        probe = _probe(ua)
        places = [m != p for m, p in zip(version_masked(probe), probe, strict=True)]
        # The corpus has few of the shapes masked since session 12 (WeChat's hex, a token
        # after "/"): more variants of each.
        for _ in range(40 if "(0x" in ua or "XiaoMi/" in ua else 1):
            variant = "".join(rng.choice(_SAME_CLASS[k]) if at else c for c, k, at in zip(ua, key, places, strict=True))
            assert version_masked(variant) == key
            varied += 1
            if _analyse(variant) != _analyse(ua):
                wrong += 1
    assert varied > 20000
    assert wrong == 0


def _refined(ua: str) -> tuple[str, str, str]:
    return tuple(DeviceClassifier(cache_size=0, memo_size=0).classify(ua))
