"""ua-parser's rule lists asked in consecutive parts (enrich/device.py _FirstMatch, issue 17).

The resolver cuts each list (user agent, OS, the device families we use) after the rule the
commonest User-Agents match, so that they skip the rest; the first match over the parts is
the whole list's first match, so no answer may change. Checked here field for field against
one ua-parser-rs extractor of the whole list, on the labelled corpus (bench/ua_corpus.py),
the traffic table, the unique bench's User-Agents and hostile strings; the composition alone
with a cut after every rule; and that the cuts are still found in the installed regexes (a
release that moved them would silently cost the parse what it cost before session 17).
"""

from __future__ import annotations

import importlib.util
import random

import pytest

from bench.ua_corpus import load_corpus
from collector.enrich import device as dev
from tests.ua_samples import UA_TABLE

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ua_parser_rs") is None, reason="ua-parser-rs not installed")

HOSTILE = [
    "", " ", "iPhone", "Android", "Android " * 60, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)" * 9,
    "\x00\x01\x7f" * 100, "Chrome/" + "1." * 250, "é漢字🙂" * 100, "(Chrome)/1.2.3.4 Mobile",
]


def _rules():
    import ua_parser

    ua, os_, de = ua_parser.load_lazy_builtins()
    return list(ua), list(os_), [m for m in de if m.family in dev._DEVICE_FAMILIES_USED]


def _whole_extractors():
    import ua_parser_rs

    ua, os_, de = _rules()
    return (
        ua_parser_rs.UserAgentExtractor((m.regex, m.family, m.major, m.minor, m.patch, m.patch_minor) for m in ua),
        ua_parser_rs.OSExtractor((m.regex, m.family, m.major, m.minor, m.patch, m.patch_minor) for m in os_),
        ua_parser_rs.DeviceExtractor((m.regex, m.regex_flag, m.family, m.brand, m.model) for m in de),
    )


def _fields(m, names):
    return None if m is None else tuple(getattr(m, n) for n in names)


UA_FIELDS = OS_FIELDS = ("family", "major", "minor", "patch", "patch_minor")
DEVICE_FIELDS = ("family", "brand", "model")


@pytest.fixture(scope="module")
def user_agents() -> list[str]:
    from bench import traffic
    from bench.ippool import load_pool

    uas = {e.ua for e in load_corpus()} | {row[0] for row in UA_TABLE}
    unique = traffic.unique(traffic.Population(load_pool(), 1000, seed=9), 6000, 1764547200000, serial_start=5_000_000)
    uas |= {r.headers["User-Agent"] for r in unique}
    assert len(uas) > 40000
    return sorted(uas) + HOSTILE


def test_each_list_is_cut_where_it_was_measured():
    """Each cut rule is found in the installed regexes: 2 parts of the UA list, 3 of the OS
    list and 3 of the device families', each ending with its named rule."""
    resolver, _ = dev._get_resolver()
    assert isinstance(resolver, dev._RsResolver)
    assert [len(fm.parts) for fm in (resolver.ua, resolver.os, resolver.de)] == [2, 3, 3]
    ua, os_, de = _rules()
    for rules, cuts in ((ua, dev._UA_CUTS), (os_, dev._OS_CUTS), (de, dev._DEVICE_CUTS)):
        assert {m.regex for m in rules} >= cuts


def test_parts_answer_as_the_whole_lists(user_agents):
    """Every field of every answer of the cut lists equals the whole list's, for > 40,000 UAs."""
    resolver, _ = dev._get_resolver()
    whole_ua, whole_os, whole_de = _whole_extractors()
    wrong = []
    for ua in user_agents:
        for cut, whole, fields in ((resolver.ua, whole_ua, UA_FIELDS), (resolver.os, whole_os, OS_FIELDS),
                                   (resolver.de, whole_de, DEVICE_FIELDS)):
            if _fields(cut.extract(ua), fields) != _fields(whole.extract(ua), fields):
                wrong.append((ua, fields))
    assert wrong == []
    # And the answers are not trivially alike: the parts do answer, from every part.
    assert {resolver.de.extract(u).family for u in user_agents if resolver.de.extract(u)} >= {"iPhone", "Spider"}


def test_a_cut_after_every_rule_answers_as_the_whole_list(user_agents):
    """The composition alone, however cut: the OS and device lists with a cut after every rule."""
    import ua_parser_rs

    _, os_, de = _rules()
    every_os = dev._FirstMatch(
        lambda rules: ua_parser_rs.OSExtractor((m.regex, m.family, m.major, m.minor, m.patch, m.patch_minor)
                                               for m in rules),
        os_, frozenset(m.regex for m in os_),
    )
    every_de = dev._FirstMatch(
        lambda rules: ua_parser_rs.DeviceExtractor((m.regex, m.regex_flag, m.family, m.brand, m.model) for m in rules),
        de, frozenset(m.regex for m in de),
    )
    assert len(every_de.parts) == len(de)
    _, whole_os, whole_de = _whole_extractors()
    sample = random.Random(17).sample(user_agents, 1500) + HOSTILE
    assert [_fields(every_os.extract(u), OS_FIELDS) for u in sample] == [
        _fields(whole_os.extract(u), OS_FIELDS) for u in sample]
    assert [_fields(every_de.extract(u), DEVICE_FIELDS) for u in sample] == [
        _fields(whole_de.extract(u), DEVICE_FIELDS) for u in sample]


def test_a_lone_surrogate_still_takes_the_replacing_path():
    """Rust cannot take a lone surrogate: the parts raise UnicodeError as the whole did, and
    _parse retries with it replaced."""
    resolver, _ = dev._get_resolver()
    with pytest.raises(UnicodeError):
        resolver.os.extract("Android 13\ud800")
    assert dev._parse("Mozilla/5.0 (Linux; Android 13\ud800) Chrome/120.0.0.0 Mobile Safari/537.36")[1] == "Android"


def test_the_crawler_list_ahead_of_the_device_families_answers_as_both(user_agents):
    """The crawler list, the TV/console tokens and the device families' first part in one
    extractor (the parse's crawler test, TV test and device family in one native call, session
    27): its first answer is a crawler's exactly when the crawler list alone matches, with the
    same text; otherwise the TV tokens' exactly when one occurs; otherwise every field of the
    device families' own answer."""
    from collector.enrich.crawler_list import CRAWLER_BRAND, CrawlerList

    resolver, _ = dev._get_resolver()
    assert len(resolver.crawlers_then_devices) == len(resolver.de.parts)
    assert resolver.crawlers_then_devices[0] is not resolver.de.parts[0]
    assert all(rule[3] != CRAWLER_BRAND for rule in resolver.first_device_rules)
    alone = CrawlerList.load(native=True)
    wrong = []
    crawlers = tvs = devices = 0
    for ua in user_agents:
        m = dev._first_answer(resolver.crawlers_then_devices, ua)
        crawler = alone._match(ua)
        if crawler is not None:
            crawlers += 1
            if m is None or m.brand != CRAWLER_BRAND or m.family != crawler:
                wrong.append(ua)
        elif (m is not None and m.brand == dev._TV_CONSOLE_BRAND) != (dev._TV_CONSOLE_SET.first(ua) is not None):
            wrong.append(ua)
        elif m is not None and m.brand == dev._TV_CONSOLE_BRAND:
            tvs += 1
        elif _fields(m, DEVICE_FIELDS) != _fields(resolver.de.extract(ua), DEVICE_FIELDS):
            wrong.append(ua)
        else:
            devices += m is not None
    assert wrong == []
    assert crawlers > 500 and tvs > 300 and devices > 30000
