"""admission.url_host (the page's, the Origin's and the referrer's host) reads what its
former regex read: the regex stays here as the specification."""

import random
import re

import pytest

from collector.hit.admission import header_host, url_host

_AUTHORITY = re.compile(r"://([^/?#]*)")  # what follows the first "://" up to the path, query or fragment


def _by_regex(url: str) -> str:
    authority = _AUTHORITY.search(url)
    if authority is None:
        return ""
    host = authority[1]
    if "@" in host:
        host = host.rpartition("@")[2]
    return host.lower()[:253]


CASES = [
    "", "https://www.zjer.cn/", "https://www.zjer.cn", "https://WWW.ZJER.CN:8443/a/b?c=d#e", "http://a?b/c",
    "http://a#b/c?d", "http://a/b#c", "https://user:pw@Host.example/x", "https://u@v@w.example:1/", "://",
    "://x", "no scheme here", "www.zjer.cn/course", "javascript://%0aalert(1)", "https://:80/", "https:///path",
    "https://a.example/x://b.example/", "android-app://com.tencent.mm/", "https://例子.测试/路径",
    "https://" + "a" * 300 + "/", "https://a\nb/c", "https://[2001:db8::1]:8080/x", "file:///etc/passwd",
    "https://a.example?x=://b", "null", "HTTPS://A.EXAMPLE", "https://a.example\\b/c",
]


@pytest.mark.parametrize("url", CASES)
def test_url_host_reads_what_the_regex_read(url):
    assert url_host(url) == _by_regex(url)


def test_url_host_on_random_urls_from_the_tricky_characters():
    rng = random.Random(5)
    alphabet = ":/?#@.aZ1é \n"
    for _ in range(5000):
        url = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        assert url_host(url) == _by_regex(url), url


def test_header_host_prefers_origin_then_referer():
    assert header_host("https://a.example", "https://b.example/x") == "a.example"
    assert header_host("null", "https://b.example/x") == "b.example"
    assert header_host(None, None) == ""
