"""Validation of single events against the table in docs/protocol.md."""

import pytest

from collector.hit.protocol import EVENT_TYPES, from_query, usable_app_key, validate_event


def reasons(event):
    return sorted((p.field, p.reason) for p in validate_event(event, 0))


GOOD_PV = {"k": "app1", "t": "pageview", "u": "https://example.edu/x"}


def test_minimal_pageview_is_valid():
    assert validate_event(GOOD_PV) == []


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
        assert validate_event({"k": "a", "t": etype, **fields}) == [], etype
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
    assert validate_event({**GOOD_PV, "future_field": {"x": [1, 2]}}) == []


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
    assert validate_event(event) == [] and event["uid"] == "10086"
    assert reasons({**GOOD_PV, "uid": 1.5}) == [("uid", "wrong_type")]
