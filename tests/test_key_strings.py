"""The deep tag's key strings made once per value (features/facts.py KeyStrings): the
strings store/keys.py makes, and never more of them kept than KEY_STRINGS_KEPT, whatever
values a page invents."""

from __future__ import annotations

from collector.features.facts import KEY_STRINGS_KEPT, KeyStrings
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
