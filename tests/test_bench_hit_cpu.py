"""bench.hit_cpu measures the valid hit of real traffic, round after round. (Before, every
round replayed the warm-up's requests as they were: each beacon hit came back with an
event id the worker had just seen — flagged repeated_id, a reject record journaled, a
re-send deduplicated at flush — so 3,228 of the 4,000 GET hits and all 4,000 POST events
of each measured round took that path instead of a new hit's.)"""

from __future__ import annotations

import re

import orjson
import pytest

from bench import hit_cpu, traffic


@pytest.mark.parametrize("shape", ["get", "post50"])
def test_measured_rounds_are_counted_hits_with_no_rejection_or_flag(shape: str):
    rounds = 2
    _, events, reasons = hit_cpu.measured(shape, 200 if shape == "get" else 1000, rounds)
    assert reasons == {}  # no repeated_id, no client_clock, nothing rejected
    per_pass = 200 if shape == "get" else 20 * 50
    assert events == per_pass * (1 + rounds)  # the warm-up and each round, every event counted


def test_a_replay_pass_gives_new_ids_fresh_timestamps_and_a_right_content_length():
    body = orjson.dumps([{"t": "click", "ts": 1_000, "id": "aaaa1111", "k": "app", "p": {"rid": "r1"}}])
    post = traffic.http_bytes(traffic.Request("POST", "/c", {"Content-Type": "text/plain"}, body))
    get = traffic.http_bytes(traffic.Request("GET", "/c?img=1&ts=1000&id=bbbb2222&rid=r2&k=app", {}, b""))
    assert traffic.with_pass(post, 1) == post

    again = traffic.with_pass(post, 3, shift_ms=500)
    head, _, new_body = again.partition(b"\r\n\r\n")
    assert orjson.loads(new_body) == [{"t": "click", "ts": 1_500, "id": "aaaa1111p3", "k": "app", "p": {"rid": "r1"}}]
    assert re.search(rb"Content-Length: (\d+)", head).group(1) == str(len(new_body)).encode()

    path = traffic.with_pass(get, 3, shift_ms=500).split(b" ")[1]
    assert path == b"/c?img=1&ts=1500&id=bbbb2222p3&rid=r2&k=app"
