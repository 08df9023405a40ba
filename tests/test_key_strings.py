"""The deep tag's key strings made once per value (features/facts.py KeyStrings): the
strings store/keys.py makes, and never more of them kept than KEY_STRINGS_KEPT, whatever
values a page invents."""

from __future__ import annotations

from collector.features.facts import KEY_STRINGS_KEPT, DeepFacts, KeyStrings, target_field
from collector.store import keys


def test_the_strings_are_those_keys_makes_and_made_once():
    strings = KeyStrings()
    field = strings.metric_field("clicks", "nav-home")
    assert field == keys.metric_field("clicks", "nav-home")
    assert strings.metric_field("clicks", "nav-" + "home") is field  # an equal value finds the kept one
    assert strings.metric_field("exposures", "nav-home") == keys.metric_field("exposures", "nav-home")
    assert strings.viewers_suffix("resource", "v1") == keys.dimension_visitors_suffix("resource", "v1")
    assert strings.resources_suffix("subject", "math") == keys.resources_suffix("subject", "math")
    assert strings.item("banner", 3) == "banner#3"
    assert strings.item("banner", 3) is strings.item("banner", 3)
    assert strings.kept == 5


def test_invented_values_keep_no_more_than_the_bound():
    strings = KeyStrings()
    for n in range(3 * KEY_STRINGS_KEPT + 7):
        value = f"target-{n}"
        assert strings.metric_field("clicks", value) == keys.metric_field("clicks", value)
        assert strings.viewers_suffix("resource", value) == keys.dimension_visitors_suffix("resource", value)
        assert strings.item(value, n) == f"{value}#{n}"
        assert strings.kept <= KEY_STRINGS_KEPT
    # Started afresh at the bound: still the right strings, and an early value made again.
    assert strings.metric_field("clicks", "target-0") == "clicks:target-0"
    assert strings.resources_suffix("stage", "junior") == keys.resources_suffix("stage", "junior")


def test_a_unit_increment_is_the_target_fields_made_once():
    """DeepFacts.count and total of 1 append the kept (suffix, field, 1): the values the
    journal writes and the aggregator adds, whatever was asked before."""
    strings = KeyStrings()
    inc = strings.unit_inc("target", "clicks", "nav-home")
    assert inc == (*target_field("target", "nav-home", "clicks"), 1)
    assert strings.unit_inc("target", "clicks", "nav-" + "home") is inc
    assert strings.unit_inc("target", "exposures", "nav-home") == (*target_field("target", "nav-home", "exposures"), 1)
    assert strings.unit_inc("track", "clicks", "nav-home") == (*target_field("track", "nav-home", "clicks"), 1)
    assert strings.unit_inc("", "track_clicks", "") == (keys.COUNTERS, "track_clicks", 1)
    facts = DeepFacts([], [])
    facts.count("target", "nav-home", "clicks")
    facts.count("target", "nav-home", "rating_sum", 4)
    facts.total("entries")
    facts.total("entries", 2)
    assert facts.incs == [(*target_field("target", "nav-home", "clicks"), 1),
                          (*target_field("target", "nav-home", "rating_sum"), 4),
                          (keys.COUNTERS, "entries", 1), (keys.COUNTERS, "entries", 2)]


def test_unit_increments_keep_no_more_than_the_bound():
    strings = KeyStrings()
    for n in range(3 * KEY_STRINGS_KEPT + 7):
        value = f"target-{n}"
        assert strings.unit_inc("target", "clicks", value) == (*target_field("target", value, "clicks"), 1)
        assert strings.kept <= KEY_STRINGS_KEPT
