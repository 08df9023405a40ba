from __future__ import annotations

import importlib.util

import pytest

from collector.enrich.device import DEVICE_CLASSES, Device, DeviceClassifier, resolver_name

try:
    from tests.ua_samples import IPADOS_DESKTOP_MODE_UA, SAMPLE_USER_AGENTS, UA_TABLE
except ImportError:  # tests/ not importable as a package: pytest put it on sys.path
    from ua_samples import IPADOS_DESKTOP_MODE_UA, SAMPLE_USER_AGENTS, UA_TABLE


@pytest.fixture(scope="module")
def clf() -> DeviceClassifier:
    return DeviceClassifier()


def _by_class(cls: str) -> str:
    return next(ua for ua, c, _b, _o in UA_TABLE if c == cls)


ANDROID_PHONE = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4.1 Mobile/15E148 Safari/604.1")
WIN_CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
LINUX_CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.201 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
SMART_TV = "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36"
UNKNOWN = "Mozilla/5.0"


# --------------------------------------------------------------------------- table


def test_table_is_big_enough_and_valid():
    assert len(UA_TABLE) >= 40
    assert len({ua for ua, *_ in UA_TABLE}) == len(UA_TABLE), "duplicate UA in table"
    assert {c for _, c in SAMPLE_USER_AGENTS} == set(DEVICE_CLASSES)


@pytest.mark.parametrize(
    "ua,cls,browser,os_family", UA_TABLE, ids=[f"{i:02d}-{row[1]}" for i, row in enumerate(UA_TABLE)]
)
def test_real_user_agents(clf, ua, cls, browser, os_family):
    d = clf.classify(ua)
    assert d.device_class == cls, d
    if browser is not None:
        assert d.browser == browser, d
    if os_family is not None:
        assert d.os == os_family, d
    assert d.is_bot == (cls == "bot")


# --------------------------------------------------------------------------- resolver


@pytest.mark.skipif(importlib.util.find_spec("ua_parser_rs") is None, reason="ua-parser-rs not installed")
def test_uses_native_rs_resolver(clf):
    assert resolver_name() == "ua-parser-rs"
    assert clf.resolver_name == "ua-parser-rs"


# --------------------------------------------------------------------------- rules


def test_bot_name_from_token_when_ua_parser_sees_only_a_browser(clf):
    d = clf.classify(WIN_CHROME + " (compatible; SomeNewBot/1.0; +https://example.com/bot)")
    assert d == Device("bot", "SomeNewBot", "Windows")


def test_lighthouse_and_empty_ua_are_bots(clf):
    assert clf.classify(WIN_CHROME + " Chrome-Lighthouse").is_bot
    assert clf.classify("") == Device("bot", "Other", "Other")
    assert clf.classify("   ").is_bot


def test_ipados_desktop_mode_needs_multi_touch(clf):
    assert clf.classify(IPADOS_DESKTOP_MODE_UA) == Device("pc", "Safari", "Mac OS X")
    assert clf.classify(IPADOS_DESKTOP_MODE_UA, touch_points=0) == Device("pc", "Safari", "Mac OS X")
    # DevTools touch emulation reports a single touch point: still a Mac.
    assert clf.classify(IPADOS_DESKTOP_MODE_UA, touch_points=1).device_class == "pc"
    assert clf.classify(IPADOS_DESKTOP_MODE_UA, touch_points=5) == Device("tablet", "Mobile Safari", "iOS")
    assert clf.classify(IPADOS_DESKTOP_MODE_UA, None, 1024, 1366, 5).device_class == "tablet"


def test_ipad_webview_in_desktop_mode_with_mobile_build_token(clf):
    ua = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 MicroMessenger/8.0.40(0x1800282a) NetType/WIFI Language/zh_CN"
    )
    assert clf.classify(ua) == Device("tablet", "WeChat", "iOS")


def test_wecom_wins_over_wechat(clf):
    ua = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN wxwork/4.1.20 "
        "MicroMessenger/7.0.1 Language/zh ColorScheme/Light"
    )
    assert clf.classify(ua) == Device("mobile", "WeCom", "iOS")


# --------------------------------------------------------------------------- hints


def test_no_hint_keeps_ua_classification(clf):
    assert clf.classify(ANDROID_PHONE).device_class == "mobile"
    assert clf.classify(ANDROID_TABLET).device_class == "tablet"
    assert clf.classify(WIN_CHROME).device_class == "pc"


def test_ch_mobile_1_means_mobile(clf):
    assert clf.classify(ANDROID_TABLET, "?1").device_class == "mobile"
    # e.g. desktop-mode / frozen desktop UA from a Chromium that serves a phone layout
    assert clf.classify(LINUX_CHROME, "?1") == Device("mobile", "Chrome", "Linux")
    assert clf.classify(ANDROID_PHONE, "?1").device_class == "mobile"
    assert clf.classify(UNKNOWN, "?1").device_class == "mobile"
    # a recognised TV / console stays "other"
    assert clf.classify(SMART_TV, "?1").device_class == "other"


def test_ch_mobile_0_means_not_mobile(clf):
    # Real multi-touch: an Android tablet whose UA claims "Mobile".
    assert clf.classify(ANDROID_PHONE, "?0", 800, 1280, 5).device_class == "tablet"
    # No multi-touch: desktop Chromium emulating / spoofing a phone UA.
    assert clf.classify(ANDROID_PHONE, "?0").device_class == "pc"
    assert clf.classify(IPHONE, "?0", 390, 844, 1).device_class == "pc"
    # Not-mobile classes are left alone.
    assert clf.classify(ANDROID_TABLET, "?0").device_class == "tablet"
    assert clf.classify(WIN_CHROME, "?0").device_class == "pc"
    assert clf.classify(SMART_TV, "?0").device_class == "other"


def test_unrecognised_hint_values_are_ignored(clf):
    for ch in ("?2", "", "yes", "  ", "?1?0"):
        assert clf.classify(ANDROID_TABLET, ch).device_class == "tablet"
    assert clf.classify(ANDROID_TABLET, " ?1 ").device_class == "mobile"  # whitespace tolerated


def test_bots_are_never_reclassified(clf):
    for args in [("?1",), ("?0",), ("?0", 1920, 1080, 0), ("?1", 390, 844, 5), (None, 820, 1180, 5)]:
        d = clf.classify(GOOGLEBOT_SMARTPHONE, *args)
        assert d == Device("bot", "Googlebot", "Android"), args
    assert clf.classify("curl/8.5.0", "?1", 390, 844, 5).device_class == "bot"


# --------------------------------------------------------------------------- screen


def test_ua_naming_no_platform_is_a_machine_unless_the_hit_shows_a_browser(clf):
    # Was "other" (and so a human page view): every real browser names its platform,
    # so a bare "Mozilla/5.0" with nothing else is automation.
    assert clf.classify(UNKNOWN) == Device("bot", "Mozilla", "Other")
    assert clf.classify("CommaFeed/1.0 (https://www.commafeed.com)").is_bot
    assert clf.classify("Webzio-Extended").is_bot
    # A screen size (only beacon.js reports one) or Sec-CH-UA-Mobile shows a browser ran.
    assert clf.classify(UNKNOWN, None, 390, 844, 5) == Device("mobile", "Other", "Other")
    assert clf.classify(UNKNOWN, None, 844, 390, 0).device_class == "mobile"  # shorter side counts
    assert clf.classify(UNKNOWN, None, 820, 1180, 5).device_class == "tablet"
    assert clf.classify(UNKNOWN, None, 1032, 1376, 10).device_class == "tablet"
    # 600-1099 without touch, or a desktop screen: a computer.
    assert clf.classify(UNKNOWN, None, 800, 1280, 0).device_class == "pc"
    assert clf.classify(UNKNOWN, None, 1920, 1080, 0).device_class == "pc"
    # An impossible screen is no evidence.
    assert clf.classify(UNKNOWN, None, 0, 844, 5).is_bot
    # the hint outranks the screen
    assert clf.classify(UNKNOWN, "?0", 390, 844, 5).device_class == "pc"
    assert clf.classify(UNKNOWN, "?0").device_class == "pc"


def test_android_phone_in_desktop_mode(clf):
    # "Request desktop site": Linux desktop UA, ?0, but a multi-touch phone screen.
    assert clf.classify(LINUX_CHROME, "?0", 412, 915, 5) == Device("mobile", "Chrome", "Linux")
    assert clf.classify(LINUX_CHROME, None, 915, 412, 5).device_class == "mobile"
    # Touch laptop / no touch info / tablet-sized: stays a pc.
    assert clf.classify(LINUX_CHROME, None, 1536, 864, 10).device_class == "pc"
    assert clf.classify(LINUX_CHROME, None, 800, 1280, 10).device_class == "pc"
    assert clf.classify(LINUX_CHROME, None, 412, 915, 0).device_class == "pc"


def test_screen_does_not_touch_recognised_classes(clf):
    assert clf.classify(SMART_TV, None, 960, 540, 0).device_class == "other"
    assert clf.classify(WIN_CHROME, None, 360, 640, 10).device_class == "pc"
    assert clf.classify(IPHONE, None, 1920, 1080, 0).device_class == "mobile"


# --------------------------------------------------------------------------- cache


def test_cache_returns_same_object():
    c = DeviceClassifier(cache_size=128)
    a = c.classify(IPHONE, None, 390, 844, 5)
    b = c.classify(IPHONE, None, 390, 844, 5)
    assert a is b
    # Screen sizes in the same bucket share the cache entry.
    assert c.classify(IPHONE, None, 414, 896, 5) is a
    info = c.cache_info()
    assert info.hits == 2 and info.misses == 1
    # Equal UA string but a different str object still hits.
    assert c.classify("".join(IPHONE), None, 390, 844, 5) is a


def test_cache_is_bounded():
    c = DeviceClassifier(cache_size=4)
    for i in range(20):
        c.classify(f"{WIN_CHROME} build/{i}")
    assert c.cache_info().currsize == 4
    c.cache_clear()
    assert c.cache_info().currsize == 0


def test_cache_size_zero_still_classifies():
    c = DeviceClassifier(cache_size=0)
    assert c.classify(IPHONE).device_class == "mobile"


# --------------------------------------------------------------------------- garbage


GARBAGE_UAS = [
    None,
    "",
    "x" * 10_000,
    "Mozilla/5.0 " + "(" * 5000,
    "\x00\x01\x02\r\n\t\x7f",
    "Mozilla/5.0 (iPhone; \x00CPU iPhone OS 17_4 like Mac OS X)\r\n",
    "Mozilla/5.0 (Linux; Android 14; 小米 14 Ultra) AppleWebKit/537.36 Mobile Safari/537.36 😀",
    "\ud800\udfff lone surrogates \udc80",
    "İ" * 600 + "Googlebot",
    b"curl/8.5.0",
    b"\xff\xfe\xfa",
    12345,
    ["not", "a", "string"],
    object(),
]


@pytest.mark.parametrize("ua", GARBAGE_UAS, ids=range(len(GARBAGE_UAS)))
def test_garbage_ua_never_raises(clf, ua):
    d = clf.classify(ua)
    assert isinstance(d, Device)
    assert d.device_class in DEVICE_CLASSES
    assert isinstance(d.browser, str) and isinstance(d.os, str)


@pytest.mark.parametrize(
    "args",
    [
        (None, None, None, None),
        ("?1", "390", "844", "5"),
        (b"?1", 390.7, 844.2, 5.0),
        (["?1"], -1, -1, -1),
        ({"x": 1}, float("nan"), float("inf"), "many"),
        ("?0", 10**30, 10**30, 10**30),
        (123, object(), [], {}),
    ],
)
def test_garbage_hints_and_screen_never_raise(clf, args):
    for ua in (IPHONE, UNKNOWN, None):
        d = clf.classify(ua, *args)
        assert d.device_class in DEVICE_CLASSES


def test_coerced_values_are_used(clf):
    assert clf.classify(b"curl/8.5.0") == Device("bot", "curl", "Other")
    assert clf.classify(UNKNOWN, "?1", "390", "844", "5").device_class == "mobile"
    assert clf.classify(IPADOS_DESKTOP_MODE_UA, None, 1024.0, 1366.0, "5").device_class == "tablet"


def test_none_ua_is_empty_ua(clf):
    assert clf.classify(None) == Device("bot", "Other", "Other")


def test_ua_is_truncated_before_parsing(clf):
    # A bot token past the 512-char cut is not seen; the cut does not raise.
    padded = WIN_CHROME + " " * 600 + "Googlebot/2.1"
    assert clf.classify(padded) == clf.classify(padded[:512]) == Device("pc", "Chrome", "Windows")
    assert clf.classify("x" * 10_000) is clf.classify("x" * 512)


def test_device_is_frozen_and_is_bot():
    d = Device("bot", "Googlebot", "Other")
    assert d.is_bot and not Device("pc", "Chrome", "Windows").is_bot
    with pytest.raises(AttributeError):
        d.device_class = "pc"  # type: ignore[misc]


# --------------------------------------------------------------------------- fallbacks


def _use_resolver(monkeypatch, resolver, domain, name):
    import collector.enrich.device as dev

    monkeypatch.setattr(dev, "_resolver", resolver)
    monkeypatch.setattr(dev, "_domain_all", domain)
    monkeypatch.setattr(dev, "RESOLVER_NAME", name)


def test_falls_back_to_pure_python_resolver_without_rs(monkeypatch):
    import sys

    import collector.enrich.device as dev

    monkeypatch.setitem(sys.modules, "ua_parser_rs", None)  # makes `import ua_parser_rs` fail
    resolver, domain, name = dev._build_resolver()
    assert name in ("re2", "basic") and resolver is not None
    expected = {ua: DeviceClassifier().classify(ua) for ua, *_ in UA_TABLE[::6]}
    _use_resolver(monkeypatch, resolver, domain, name)
    c = DeviceClassifier()
    assert c.resolver_name == name
    for ua, want in expected.items():
        assert c.classify(ua) == want


def test_token_rules_only_without_ua_parser(monkeypatch):
    _use_resolver(monkeypatch, None, None, "none")
    c = DeviceClassifier()
    assert c.classify(IPHONE) == Device("mobile", "Other", "iOS")
    assert c.classify(ANDROID_TABLET) == Device("tablet", "Other", "Android")
    assert c.classify(WIN_CHROME) == Device("pc", "Other", "Windows")
    assert c.classify("curl/8.5.0") == Device("bot", "curl", "Other")
    assert c.classify(GOOGLEBOT_SMARTPHONE).device_class == "bot"


# --------------------------------------------------------------------------- third-party data


def test_android_models_from_matomo_style_list():
    from collector.enrich.device_models import AndroidModels

    brands = {
        "Samsung": {
            "regex": "SM-",
            "device": "smartphone",
            "models": [
                {"regex": "(?:SAMSUNG-)?SM-T29[05]", "device": "tablet"},
                {"regex": "SM-T2950X"},  # a phone inside a tablet prefix: the longer prefix wins
                {"regex": "SM-G9(?:60|73)F"},
            ],
        },
        "Acme": {"regex": "Acme ?Pad|AcmeTab", "device": "tablet"},  # a brand without models
        "Box": {"regex": "TVBOX[0-9]+", "device": "tv"},
        "Both": {"regex": "XY1", "device": "tablet", "models": [{"regex": "XY1"}, {"regex": "XY1", "device": "phablet"}]},
    }
    m = AndroidModels.from_matomo(brands)
    assert m.device_class("SM-T295N") == "tablet"
    assert m.device_class("SAMSUNG-SM-T290") == "tablet"
    assert m.device_class("SM-T2950X") == "mobile"
    assert m.device_class("SM-G960F") is None  # phones are the default: not stored
    assert m.device_class("AcmePad 10") == "tablet" and m.device_class("acmetab") == "tablet"
    assert m.device_class("TVBOX3") == "other"
    assert m.device_class("XY1") is None  # typed both ways: no verdict


def test_android_model_class_is_the_longest_listed_prefix():
    """device_class, which tests only the lengths listed under a model's first characters,
    answers as a test of every listed length, longest first (session 27), on the installed
    list's prefixes, their neighbours and random strings; and on a table with short prefixes."""
    import random

    from collector.enrich.device_models import AndroidModels

    def longest_listed(m, model):
        low = model.lower()
        for length in sorted({len(p) for p in m.table}, reverse=True):
            if length <= len(low) and low[:length] in m.table:
                return m.table[low[:length]]
        return None

    tiny = AndroidModels({"ab": "tablet", "abcd": "pc", "xyz1": "other"})
    assert [tiny.device_class(x) for x in ("abX", "ABCDE", "xyz12", "a", "xy", "")] == [
        "tablet", "pc", "other", None, None, None]
    m = AndroidModels.load()
    if not m.table:
        pytest.skip("device-detector is not installed")
    rng = random.Random(27)
    prefixes = sorted(m.table)
    models = rng.sample(prefixes, 3000)
    models += [p.upper() + "X" for p in models[:1000]] + [p[:-1] for p in models[:1000]]
    models += [rng.choice(prefixes)[: rng.randint(0, 8)] + "".join(rng.choices("abcXYZ019- /İ", k=rng.randint(0, 9)))
               for _ in range(5000)]
    answers = [m.device_class(x) for x in models]
    assert answers == [longest_listed(m, x) for x in models]
    assert sum(a is not None for a in answers) > 3000


def test_android_model_table_is_cached_per_list_version(tmp_path, monkeypatch):
    from collector.enrich import device_models

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = device_models.AndroidModels.load()
    assert len(built) > 10_000  # Matomo's list, from the installed device-detector
    cached = list((tmp_path / "edu-beacon").glob("android-models-*.json"))
    assert len(cached) == 1
    assert device_models.AndroidModels.load().table == built.table
    cached[0].write_text("{not json")  # damaged: rebuilt, not trusted
    assert device_models.AndroidModels.load().table == built.table


def test_crawler_list_is_loaded_natively(clf):
    import collector.enrich.device as dev

    assert dev.CRAWLER_PATTERNS > 1000
    # Crawlers that used to pass as people (issue: "machines counted as people").
    for ua in (
        "Mozilla/5.0 (compatible; SerpReputationManagementAgent/1.0)",
        "GoogleDocs; apps-spreadsheets; +http://docs.google.com",
        "python-httpx/0.27.0",
        "Uptime-Kuma/1.21.2",
    ):
        assert clf.classify(ua).is_bot, ua
    # A pattern of the list that names a phone is not applied.
    viewsonic = (
        "Mozilla/5.0 (Linux; Android 4.4.2; ViewSonic V500 Build/KVT49L) AppleWebKit/535.19 "
        "(KHTML, like Gecko) Chrome/18.0.1025.166 Mobile Safari/535.19"
    )
    assert clf.classify(viewsonic).device_class == "mobile"


def test_office_on_macos_chromebooks_and_android_tablets(clf):
    word = "Microsoft Office Word/16.43.1108 (Mac OS/10.15.6; Desktop; es-MX; NonAppStore; Apple/MacBookAir8,1)"
    assert clf.classify(word).device_class == "pc"
    chromebook = (
        "Mozilla/5.0 (Linux; Android 9; Samsung Chromebook 3) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/104.0.0.0 Safari/537.36"
    )
    assert clf.classify(chromebook).device_class == "pc"
    # A Galaxy Tab whose browser sends "Mobile": Matomo's list knows the model.
    tab = (
        "Mozilla/5.0 (Linux; Android 11; SM-T295N) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/99.0.4844.73 Mobile Safari/537.36"
    )
    assert clf.classify(tab).device_class == "tablet"
    # A phone model with "bot" in its name is not a crawler.
    mbot = "Mozilla/5.0 (Linux; Android 7.0; M bot 54) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0 Mobile Safari/537.36"
    assert clf.classify(mbot).device_class == "mobile"


def test_crawler_list_without_native_regex_gives_the_same_names():
    from collector.enrich.crawler_list import CrawlerList

    native, fallback = CrawlerList.load(native=True), CrawlerList.load(native=False)
    assert fallback.patterns >= native.patterns > 1000
    for ua in (
        "Mozilla/5.0 (compatible; SerpReputationManagementAgent/1.0)",
        "Uptime-Kuma/1.21.2",
        WIN_CHROME,
        IPHONE,
        "\ud800 lone surrogate AhrefsBot/7.0",
    ):
        assert (native.name(ua) is None) == (fallback.name(ua) is None), ua
    assert native.name(WIN_CHROME) is None and native.name("Uptime-Kuma/1.21.2") is not None
