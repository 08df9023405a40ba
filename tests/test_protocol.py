"""Validation of single events against the table in docs/protocol.md."""

import pytest

from collector.hit.protocol import EVENT_TYPES, decode_query, from_query, parse_body, usable_app_key, validate_event


def reasons(event):
    return sorted((p.field, p.reason) for p in validate_event(event, 0))


GOOD_PV = {"k": "app1", "t": "pageview", "u": "https://example.edu/x"}


def test_minimal_pageview_is_valid():
    assert not validate_event(GOOD_PV)


# The smallest valid event of each type (docs/protocol.md).
MINIMAL = {
    "pageview": {"u": "https://e.edu/"},
    "engagement": {"et": 1},
    "click": {"n": "buy"},
    "exposure": {"n": "slide", "tr": "banner", "pos": 1},
    "media": {"n": "read", "rid": "r1", "ms": "m1", "ws": 0, "wt": 0},
    "interaction": {"n": "like", "rid": "r1"},
    "custom": {},
}


def test_every_documented_type_is_accepted():
    assert set(MINIMAL) == EVENT_TYPES
    for etype, fields in MINIMAL.items():
        assert not validate_event({"k": "a", "t": etype, **fields}), etype
        for name in fields:
            missing = {"k": "a", "t": etype, **{f: v for f, v in fields.items() if f != name}}
            assert [(p.field, p.reason) for p in validate_event(missing)] == [(name, "missing_field")], (etype, name)


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"t": "pageview", "u": "https://e.edu/"}, [("k", "missing_field")]),
        ({"k": "", "t": "pageview", "u": "https://e.edu/"}, [("k", "missing_field")]),
        ({"k": "a{b}", "t": "pageview", "u": "https://e.edu/"}, [("k", "invalid_value")]),
        ({"k": "a\nb", "t": "pageview", "u": "https://e.edu/"}, [("k", "invalid_value")]),
        ({"k": "x" * 65, "t": "pageview", "u": "https://e.edu/"}, [("k", "too_long")]),
        ({"k": "a", "u": "https://e.edu/"}, [("t", "missing_field")]),
        ({"k": "a", "t": "purchase"}, [("t", "invalid_value")]),
        ({"k": "a", "t": ["pageview"]}, [("t", "wrong_type")]),
        ({"k": "a", "t": "pageview"}, [("u", "missing_field")]),
        ({"k": "a", "t": "pageview", "u": 5}, [("u", "wrong_type")]),
        ({"k": "a", "t": "pageview", "u": "javascript:alert(1)"}, [("u", "invalid_value")]),
        ({"k": "a", "t": "pageview", "u": "https://e.edu/" + "x" * 2048}, [("u", "too_long")]),
        ({**GOOD_PV, "sw": "1920"}, [("sw", "wrong_type")]),
        ({**GOOD_PV, "sw": True}, [("sw", "wrong_type")]),
        ({**GOOD_PV, "sw": 1.5}, [("sw", "wrong_type")]),
        ({**GOOD_PV, "sw": -1}, [("sw", "out_of_range")]),
        ({**GOOD_PV, "sn": 0}, [("sn", "out_of_range")]),
        ({"k": "a", "t": "engagement"}, [("et", "missing_field")]),
        ({"k": "a", "t": "engagement", "et": 86_400_001}, [("et", "out_of_range")]),
        ({"k": "a", "t": "engagement", "et": 10, "sd": 101}, [("sd", "out_of_range")]),
        ({**GOOD_PV, "p": [1]}, [("p", "wrong_type")]),
        ({**GOOD_PV, "p": {"a": {"nested": 1}}}, [("p", "invalid_value")]),
        ({**GOOD_PV, "p": {str(i): i for i in range(33)}}, [("p", "invalid_value")]),
        ({**GOOD_PV, "p": {"a": "x" * 257}}, [("p", "invalid_value")]),
        ({"t": 1, "u": None}, [("k", "missing_field"), ("t", "wrong_type"), ("u", "wrong_type")]),
    ],
)
def test_each_problem_is_named(event, expected):
    assert reasons(event) == sorted(expected)


def test_non_objects_are_rejected():
    for item in (None, 1, "pageview", [GOOD_PV]):
        assert reasons(item) == [(None, "not_an_object")]


def test_unknown_fields_are_ignored():
    assert not validate_event({**GOOD_PV, "future_field": {"x": [1, 2]}})


def test_query_strings_decode_integers_and_properties():
    event, problems = from_query({"k": "a", "t": "pageview", "u": "https://e.edu/", "sw": "1920", "p": '{"x": 1}'})
    assert problems == [] and event["sw"] == 1920 and event["p"] == {"x": 1}
    _, problems = from_query({"sw": "wide", "p": "{oops"})
    assert sorted((p.field, p.reason) for p in problems) == [("p", "malformed_json"), ("sw", "wrong_type")]


def test_app_keys_from_the_standard_are_usable():
    # Appendix A's placeholder app key is Chinese text with a space: it must work verbatim.
    assert usable_app_key("申请应用时颁发的 appKey")
    assert not usable_app_key("{x}") and not usable_app_key("") and not usable_app_key(None)


def test_numeric_user_ids_are_taken_as_text():
    event = {**GOOD_PV, "uid": 10086}
    assert not validate_event(event) and event["uid"] == "10086"
    assert reasons({**GOOD_PV, "uid": 1.5}) == [("uid", "wrong_type")]


# ---- values of the wrong type never reach a lookup, a hash or a comparison (issue 10) --------


@pytest.mark.parametrize("bad", [[1], [], {"a": 1}, {}, [[50]], "50", 50.0, True, None])
def test_a_progress_boundary_of_the_wrong_type_is_wrong_type(bad):
    event = {"k": "a", "t": "media", "n": "progress", "rid": "r", "ms": "m", "pos": 1, "ws": 1, "wt": 1, "pb": bad}
    assert reasons(event) == [("pb", "wrong_type")]


@pytest.mark.parametrize("bad", [[], ["media"], {"media": 1}, 7, 1.5, False])
@pytest.mark.parametrize("deep", [{"etr": "x"}, {"epos": 1}, {"etr": [], "epos": {}}, {"n": "play", "pb": [1], "tr": {}}])
def test_an_event_type_of_the_wrong_type_with_deep_fields_is_wrong_type(bad, deep):
    found = reasons({"k": "a", "t": bad, **deep})
    assert ("t", "wrong_type") in found, found


def test_a_numeric_user_id_is_held_to_the_length_cap():
    assert reasons({**GOOD_PV, "uid": 10**200}) == [("uid", "too_long")]
    assert reasons({**GOOD_PV, "uid": -(10**100)}) == []  # 101 characters: fits


def test_infinite_property_values_are_rejected():
    # orjson refuses 1e400; the stdlib fallback parses it as infinity
    [event] = parse_body(b'[{"k": "a", "t": "pageview", "u": "https://e.edu/", "p": {"x": 1e400}}]')
    assert reasons(event) == [("p", "invalid_value")]


def test_a_number_too_large_for_a_double_costs_its_event_not_the_batch():
    events = parse_body(b'[{"k": "a", "t": "pageview", "u": "https://e.edu/", "ts": 1e400}, {"k": "a", "t": "pageview", "u": "https://e.edu/"}]')
    assert reasons(events[0]) == [("ts", "wrong_type")] and reasons(events[1]) == []
    for not_json in (b"[NaN]", b'{"a": Infinity}', b"[-Infinity]", '["\\ud83d", "é"]'.encode("utf-16")):
        with pytest.raises(ValueError):
            parse_body(not_json)


@pytest.mark.parametrize("text, reason", [
    (" 12", "wrong_type"), ("1_000", "wrong_type"), ("+5", "wrong_type"), ("١٢", "wrong_type"), ("0x10", "wrong_type"),
    ("1.0", "wrong_type"), ("", "wrong_type"), ("-", "wrong_type"), ("--5", "wrong_type"), ("9" * 21, "out_of_range"),
])
def test_query_integers_are_decimal_digits_as_in_json(text, reason):
    _, problems = from_query({"sw": text})
    assert [(p.field, p.reason) for p in problems] == [("sw", reason)]
    event, problems = from_query({"sw": "-0012"})
    assert problems == [] and event["sw"] == -12


def test_queries_decode_every_escape_as_parse_qsl_does():
    assert decode_query("u=https%3A%2F%2Fx.edu%2Fc%3Fid%3D7%26tab%3D2%3Bx%23y&k=a%26b%3Dc%2Bd+e") == {
        "u": "https://x.edu/c?id=7&tab=2;x#y", "k": "a&b=c+d e",
    }
    assert decode_query("n=%FF%E4%B8%AD%E4%B8&r=%ZZ%&k=1&k=2&flag&=v") == {
        "n": "\ufffd中\ufffd", "r": "%ZZ%", "k": "2", "flag": "", "": "v",
    }


def test_the_app_key_check_refuses_exactly_what_its_regex_refuses():
    """_forbidden_in_app_key answers most keys without the regex: for every code point, as the regex."""
    from collector.hit.protocol import _FORBIDDEN_IN_APP_KEY, _forbidden_in_app_key

    for code in range(0x110000):
        key = "app" + chr(code) + "1"
        assert _forbidden_in_app_key(key) == (_FORBIDDEN_IN_APP_KEY.search(key) is not None), hex(code)


@pytest.mark.parametrize("key", ["a{b}", "a\x00b", "a\x7f"])
def test_an_app_key_other_than_the_one_checked_is_still_checked(key):
    """validate_event skips the app key's scan for the key its caller already found
    acceptable (a batch's event before: hit/ingest.py), and for that key only."""
    event = {"k": key, "t": "pageview", "u": "https://e.edu/"}
    assert [(p.field, p.reason) for p in validate_event(event, 1, checked_key="app1")] == [("k", "invalid_value")]
    assert not validate_event({**event, "k": "app1"}, 1, checked_key="app1")
