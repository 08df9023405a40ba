"""What decoding a GET hit's query costs: collector.hit.protocol.decode_query against
urllib.parse.parse_qsl (whose result it must equal) and its own pure-Python fallback.

    .venv/bin/python -m bench.decode_query_cost

The query is a realistic image-fallback page view as the beacon's URLSearchParams writes
it: a URL with its own query, a search-engine referrer and a Chinese title.
"""

from __future__ import annotations

import timeit
from functools import partial
from urllib.parse import parse_qsl, unquote_plus, urlencode

from collector.hit import protocol

EVENT = {
    "k": "edu-app-01", "t": "pageview", "u": "https://www.x.edu.cn/course/detail?id=7&tab=2&from=首页",
    "r": "https://www.baidu.com/s?wd=高等数学 在线课程", "ti": "高等数学（上）- 第三章 微分中值定理 - 国家智慧教育平台",
    "cs": "UTF-8", "lang": "zh-CN", "sw": 1920, "sh": 1080, "tp": 0, "ts": 1764400000000,
    "vid": "k3j4h5g6f7d8s9a0", "sid": "q1w2e3r4t5y6", "sn": 1,
}
QUERY = "img=1&" + urlencode(EVENT)


def microseconds(fn, number: int = 20_000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    print(f"query: {len(QUERY)} characters")
    print(f"decode_query (yarl C unquoter): {microseconds(lambda: protocol.decode_query(QUERY)):.2f} µs")
    parse_qsl_us = microseconds(lambda: dict(parse_qsl(QUERY, keep_blank_values=True, errors="replace")))
    print(f"parse_qsl:                      {parse_qsl_us:.2f} µs")
    fast = protocol._unquote
    protocol._unquote = partial(unquote_plus, errors="replace")
    try:
        print(f"decode_query (pure Python):     {microseconds(lambda: protocol.decode_query(QUERY)):.2f} µs")
    finally:
        protocol._unquote = fast


if __name__ == "__main__":
    main()
