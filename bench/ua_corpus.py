"""A labelled User-Agent corpus from maintained third-party data, and the classifier's agreement with it.

Sources (read from the installed packages at run time, never copied into this repository):

* Matomo device-detector's test fixtures, as shipped in the PyPI package ``device-detector``
  (the Python port; fixtures and regexes are Matomo's, LGPL-3.0).  Every fixture labels its
  User-Agent with a device type (and, in ``bots.yml``, as a bot).  They are independent of
  the data the collector classifies with (ua-parser's regexes and the crawler-user-agents
  list), so they measure, not echo, the classifier.
* The ``instances`` of the crawler-user-agents list (PyPI ``crawler-user-agents``, MIT).  The
  collector matches the same list's *patterns* at run time, so this source is reported on
  its own (it checks the wiring, not independence).

Labels: Matomo ``smartphone`` / ``phablet`` / ``feature phone`` -> ``mobile``; ``tablet`` ->
``tablet``; ``desktop`` -> ``pc``; a bot fixture -> ``bot``; the other device types (TV,
console, car browser, wearable, smart display / speaker, camera, portable media player,
peripheral) -> ``other``; fixtures without a device type are left out (no label to agree
with).  Client-hint fixtures pass their ``Sec-CH-UA-Mobile`` header, as a browser would.

The corpus is split deterministically by a hash of the User-Agent: half ``tune`` (look at
its misses while changing the rules), half ``holdout`` (only ever reported).

    python -m bench.ua_corpus                  # agreement per class, both halves and each source
    python -m bench.ua_corpus --misses bot     # the tuning half's misses for one class
    # real everyday UAs too (npm's `user-agents`, BSD-2-Clause; not run in CI):
    cd /tmp && npm pack user-agents && tar xzf user-agents-*.tgz
    python -m bench.ua_corpus --npm-user-agents /tmp/package/dist/user-agents.json
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCORED_CLASSES = ("mobile", "tablet", "pc", "bot")

# Matomo device type -> our class.
MATOMO_TYPE_CLASS = {
    "smartphone": "mobile",
    "phablet": "mobile",
    "feature phone": "mobile",
    "tablet": "tablet",
    "desktop": "pc",
    "tv": "other",
    "console": "other",
    "car browser": "other",
    "wearable": "other",
    "smart display": "other",
    "smart speaker": "other",
    "camera": "other",
    "portable media player": "other",
    "peripheral": "other",
}

MATOMO = "matomo"
CRAWLER_USER_AGENTS = "crawler-user-agents"


@dataclass(frozen=True, slots=True)
class LabelledUA:
    ua: str
    ch_mobile: str | None  # the fixture's Sec-CH-UA-Mobile, if it has one
    label: str
    source: str  # MATOMO or CRAWLER_USER_AGENTS
    origin: str  # fixture file / list entry, for reading misses

    @property
    def split(self) -> str:
        return split_of(self.ua)


def split_of(ua: str) -> str:
    """'tune' or 'holdout', fixed by the UA text alone (so the same UA is never on both sides)."""
    return "holdout" if hashlib.blake2b(ua.encode("utf-8", "replace"), digest_size=1).digest()[0] & 1 else "tune"


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{module} is not installed (pip install -e '.[test]')")
    return Path(spec.origin).parent


def matomo_fixture_dir() -> Path:
    # find_spec of the top-level package only: importing device_detector itself is slow.
    return _package_dir("device_detector") / "tests" / "fixtures" / "upstream"


def _matomo_label(entry: dict) -> str | None:
    if entry.get("bot"):
        return "bot"
    device = entry.get("device") or {}
    return MATOMO_TYPE_CLASS.get(device.get("type") or "")


def _unescape_matomo_ua(ua: str) -> str:
    # Matomo's fixtures write ";" inside a few Dalvik UAs as "##" (its YAML dumper's quirk).
    return ua.replace("##", ";")


def load_matomo() -> list[LabelledUA]:
    import yaml_rs  # a dependency of device-detector; Rust, ~0.5 s for all fixtures

    out = []
    for path in sorted(matomo_fixture_dir().glob("*.yml")):
        for entry in yaml_rs.loads(path.read_text("utf-8")) or ():
            label = _matomo_label(entry)
            ua = entry.get("user_agent")
            if label is None or not isinstance(ua, str) or not ua:
                continue
            headers = entry.get("headers") or {}
            ch = headers.get("Sec-CH-UA-Mobile")
            out.append(LabelledUA(_unescape_matomo_ua(ua), ch, label, MATOMO, path.name))
    return out


def load_crawler_user_agents() -> list[LabelledUA]:
    data = json.loads((_package_dir("crawleruseragents") / "crawler-user-agents.json").read_text("utf-8"))
    return [
        LabelledUA(ua, None, "bot", CRAWLER_USER_AGENTS, entry["pattern"])
        for entry in data
        for ua in entry.get("instances", ())
        if ua
    ]


def _dedupe(entries: Iterable[LabelledUA]) -> list[LabelledUA]:
    """One entry per (UA, hint); a UA that the sources label two ways is dropped (no truth)."""
    labels: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    first: dict[tuple[str, str | None], LabelledUA] = {}
    for e in entries:
        key = (e.ua, e.ch_mobile)
        labels[key].add(e.label)
        first.setdefault(key, e)
    return [e for key, e in first.items() if len(labels[key]) == 1]


def load_corpus() -> list[LabelledUA]:
    return _dedupe(load_matomo() + load_crawler_user_agents())


@dataclass
class Agreement:
    total: Counter
    agree: Counter
    confusion: Counter  # (label, got) -> n

    def rate(self, cls: str) -> float:
        return self.agree[cls] / self.total[cls] if self.total[cls] else float("nan")


def evaluate(classify, entries: Iterable[LabelledUA]) -> Agreement:
    """`classify(ua, ch_mobile) -> device class`; per-class agreement (recall of each label)."""
    total, agree, confusion = Counter(), Counter(), Counter()
    for e in entries:
        got = classify(e.ua, e.ch_mobile)
        total[e.label] += 1
        agree[e.label] += got == e.label
        confusion[(e.label, got)] += 1
    return Agreement(total, agree, confusion)


def collector_classify():
    from collector.enrich.device import DeviceClassifier

    clf = DeviceClassifier(cache_size=0)
    return lambda ua, ch: clf.classify(ua, ch).device_class


def _subsets(corpus: list[LabelledUA]) -> dict[str, list[LabelledUA]]:
    return {
        f"{source} {split}": [e for e in corpus if e.source == source and e.split == split]
        for source in (MATOMO, CRAWLER_USER_AGENTS)
        for split in ("tune", "holdout")
    }


def report(corpus: list[LabelledUA], classify) -> str:
    classes = SCORED_CLASSES + ("other",)
    lines = [f"{'subset':<32}" + "".join(f"{c:>16}" for c in classes)]
    for name, entries in _subsets(corpus).items():
        a = evaluate(classify, entries)
        cells = "".join(
            f"{a.rate(c) * 100:>8.2f}% {a.total[c]:>6}" if a.total[c] else f"{'-':>16}" for c in classes
        )
        lines.append(f"{name:<32}{cells}")
    return "\n".join(lines)


def misses(corpus: list[LabelledUA], classify, cls: str, split: str = "tune") -> list[tuple[str, LabelledUA]]:
    out = []
    for e in corpus:
        if e.label == cls and e.split == split:
            got = classify(e.ua, e.ch_mobile)
            if got != cls:
                out.append((got, e))
    return out


# deviceCategory of the npm package `user-agents` (BSD-2-Clause): real browser UAs sampled
# from current traffic, so a check on everyday UAs rather than Matomo's long tail.
NPM_USER_AGENTS_CLASS = {"mobile": "mobile", "tablet": "tablet", "desktop": "pc"}


def load_npm_user_agents(path: str) -> list[LabelledUA]:
    """`path`: dist/user-agents.json out of `npm pack user-agents` (not a Python package,
    so not part of the test corpus)."""
    data = json.loads(Path(path).read_text("utf-8"))
    entries = (
        LabelledUA(e["userAgent"], None, NPM_USER_AGENTS_CLASS[e["deviceCategory"]], "npm user-agents", "")
        for e in data
        if e.get("deviceCategory") in NPM_USER_AGENTS_CLASS and e.get("userAgent")
    )
    return _dedupe(entries)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--misses", metavar="CLASS", help="print the tuning half's misses for this class")
    ap.add_argument("--split", default="tune", choices=("tune", "holdout"), help="with --misses (default: tune)")
    ap.add_argument("--npm-user-agents", metavar="JSON", help="also report on npm user-agents' dist/user-agents.json")
    args = ap.parse_args(argv)
    corpus = load_corpus()
    classify = collector_classify()
    if args.npm_user_agents:
        a = evaluate(classify, load_npm_user_agents(args.npm_user_agents))
        cells = ", ".join(f"{c} {a.rate(c) * 100:.1f}% of {a.total[c]}" for c in ("mobile", "tablet", "pc"))
        print(f"npm user-agents (distinct UAs): {cells}")
    if args.misses:
        for got, e in misses(corpus, classify, args.misses, args.split):
            print(f"{got:<7} {e.origin:<24} ch={e.ch_mobile or '-':<3} {e.ua[:220]}")
        return
    print(f"{len(corpus)} labelled User-Agents (per class, agreement and count)")
    print(report(corpus, classify))


if __name__ == "__main__":
    main()
