"""Device class, browser family and OS family from a User-Agent string.

``DeviceClassifier.classify()`` turns the raw User-Agent header (plus the
optional ``Sec-CH-UA-Mobile`` client hint and the screen size / touch points
that beacon.js reports) into a small immutable :class:`Device`.

Parsing uses ua-parser 1.x.  We build the resolver ourselves instead of going
through ``ua_parser.parse()``:

* ``ua_parser.parse()`` *does* pick the native ua-parser-rs resolver when
  ``ua_parser_rs`` is importable (``BestAvailableResolver``: rs, then re2, then
  the pure-Python ``basic`` resolver), but wraps it in its own S3-FIFO cache of
  2000 entries and builds a ``Result`` on every call.  We cache the *whole*
  classification (much cheaper on a hit), so an inner cache would only cost
  memory and time.
* Constructing the resolver explicitly makes the choice visible
  (``RESOLVER_NAME``) and lets us log loudly when we fall back to the ~40x
  slower pure-Python resolver (~15-30 us vs ~650 us per uncached parse).  The
  native one runs only the few device regexes we act on (_DEVICE_FAMILIES_USED).

Two maintained lists sharpen ua-parser's answer: the crawler-user-agents
patterns (collector/enrich/crawler_list.py) for bots, and Matomo device-detector's
device list (collector/enrich/device_models.py) for Android tablets, laptops and TV
boxes.  Classes (docs/protocol.md): mobile, tablet, pc, bot, and "other" only
for a recognised TV / console / car / wearable; a UA naming no platform is a
machine unless the hit shows a browser ran.  Agreement with labelled UAs:
``python -m bench.ua_corpus``; cost per uncached UA: ``python -m bench.device_cost``.

Never raises: any input (None, bytes, huge strings, control characters, lone
surrogates, odd hint/screen types) yields a Device.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from collector.enrich.crawler_list import CRAWLER_BRAND, CrawlerList, crawler_name
from collector.enrich.device_models import AndroidModels, android_model
from collector.enrich.hashed_cache import HashedCache
from collector.enrich.ua_versions import version_masked

__all__ = [
    "DEVICE_CLASSES",
    "Device",
    "DeviceClassifier",
    "RESOLVER_NAME",
    "resolver_name",
    "version_masked",
]

log = logging.getLogger(__name__)

BOT: Final = "bot"  # the device class of crawlers (Device.is_bot)
DEVICE_CLASSES = ("mobile", "tablet", "pc", BOT, "other")

# UA strings are truncated before parsing *and* before being used as a cache
# key: real UAs are < 300 chars, and keying on 8 KB headers would let a client
# inflate the cache's memory (65536 entries x 8 KB).
MAX_UA_LEN = 512


class Device(NamedTuple):
    """What a User-Agent is: a tuple of strings. CPython's garbage collector untracks only
    exact tuples of untracked items, and a NamedTuple is a subclass: a Device stays tracked
    unless untracked on purpose (the device cache does: enrich/hashed_cache.py), and so do
    the tuples that hold one — the aggregator keeps plain copies in its entries
    (hit/record.py)."""

    device_class: str  # one of DEVICE_CLASSES
    browser: str  # browser family; bot name for bots; "Other" if unknown
    os: str  # OS family; "Other" if unknown

    @property
    def is_bot(self) -> bool:
        return self.device_class == BOT


# The module's constants are Final: compiled (collector/native.py), each is then a C variable
# rather than a lookup in the module's dict at every use. (Not the tuples, which mypyc would
# rebuild as objects where they are iterated.)
_OTHER: Final = Device("other", "Other", "Other")

# --------------------------------------------------------------------------
# Resolver selection (built once per process, lazily, shared by classifiers)
# --------------------------------------------------------------------------

_Resolver = Callable[[str, Any], Any]
_resolver: _Resolver | None = None
_domain_all: Any = None
RESOLVER_NAME = "unloaded"
_resolver_lock = threading.Lock()

# ua-parser device families we act on.  The rest of ua-parser's ~630 device regexes
# only name brands and models (which we do not keep) and cost more than the browser and
# OS parses together, so the native path runs these few alone.
_DEVICE_FAMILIES_USED: Final = frozenset({
    "Spider", "iPad", "iPhone", "iPod", "Kindle",
    "Generic Tablet", "Generic Smartphone", "Generic Feature Phone",
})


# Where each of ua-parser's lists is cut into consecutive extractors (_FirstMatch): after
# the rule that the commonest User-Agents match — Chrome Mobile and Android webviews (UA
# list), Android and iOS (OS list), iPhone and Android (the device families we use). The
# rules named by their regex text; a release of ua-parser's regexes that drops one only
# leaves that list uncut (the answers cannot change either way: _FirstMatch).
_UA_CUTS: Final = frozenset({
    r"(Chrome)/(\d+)\.(\d+)\.(\d+)\.(\d+) Mobile(?:[ /]|$)",
})
_OS_CUTS: Final = frozenset({
    r"(Android)[ \-/](\d+)(?:\.(\d+)|)(?:[.\-]([a-z0-9]+)|)",
    r"(CPU[ +]OS|iPhone[ +]OS|CPU[ +]iPhone|CPU IPhone OS|CPU iPad OS)[ +]+(\d+)[_\.](\d+)(?:[_\.](\d+)|)",
})
_DEVICE_CUTS: Final = frozenset({
    "iPhone",
    r"(Symbian|\bS60(Version|V\d)|\bS60\b|\((Series 60|Windows Mobile|Palm OS|Bada); Opera Mini|Windows CE"
    r"|Opera Mobi|BREW|Brew|Mobile; .{1,200}Firefox/|iPhone OS|Android|MobileSafari|Windows {0,2}Phone|\(webOS/"
    r"|PalmOS)",
})


class _FirstMatch:
    """One of ua-parser's rule lists as consecutive ua-parser-rs extractors, asked in
    order: the first that matches answers.

    ua-parser answers a list's first matching rule. The first match over consecutive
    parts, asked in order, is that same rule (the parts before matched nothing), so any cut
    gives the whole list's answers, field for field. What a cut changes is the cost: an
    extractor's call costs in proportion to its list (ua-parser-rs's regex_filtered zeroes and
    walks a table of every rule's literal atoms, per call) plus a pass over the User-Agent,
    so the UAs that match early in the list — Android and iPhone ones, most of the traffic —
    skip the long tails, and the rest pay one pass more per cut. Measured per parse: 136,000
    instructions → 92,500 on the unique bench's parses, 105,600 → 79,000 on the labelled
    corpus (bench/RESULTS.md, session 17). One extractor per part, no copy of the whole list:
    ~1 MB more a worker than the uncut lists (each part's own prefilter), where a whole list
    kept beside its parts (to ask only the UAs a guard token picks in parts) cost ~15 MB.
    """

    __slots__ = ("parts",)

    def __init__(self, make: Callable[[list[Any]], Any], rules: list[Any], cut_after: frozenset[str]) -> None:
        parts = []
        start = 0
        for i, rule in enumerate(rules):
            if rule.regex in cut_after and i + 1 < len(rules):
                parts.append(make(rules[start : i + 1]))
                start = i + 1
        parts.append(make(rules[start:]))
        self.parts: tuple[Any, ...] = tuple(parts)

    def extract(self, ua: str) -> Any:
        return _first_answer(self.parts, ua)


def _first_answer(parts: tuple[Any, ...], ua: str) -> Any:
    for part in parts:
        m = part.extract(ua)
        if m is not None:
            return m
    return None


def _device_rules(rules: list[Any]) -> list[tuple[Any, ...]]:
    """A device rule list as ua-parser-rs's DeviceExtractor takes it."""
    return [(m.regex, m.regex_flag, m.family, m.brand, m.model) for m in rules]


def _versioned(rules: list[Any]) -> Iterator[tuple[Any, ...]]:
    """A UA or OS rule list as ua-parser-rs's extractors take it."""
    return ((m.regex, m.family, m.major, m.minor, m.patch, m.patch_minor) for m in rules)


class _RsResolver:
    """ua-parser's own regexes on ua-parser-rs, with the device list cut to the families
    in _DEVICE_FAMILIES_USED, each list in parts (_FirstMatch); answers like
    ua_parser.regex.Resolver (.user_agent, .os, .device with .family)."""

    __slots__ = ("ua", "os", "de", "first_device_rules", "crawlers_then_devices")

    def __init__(self, matchers: Any) -> None:
        # Looked up in sys.modules each time (compiled, `import` keeps the module it found
        # first): the fallback below must follow a missing ua-parser-rs.
        ua_parser_rs = importlib.import_module("ua_parser_rs")
        ua, os_, de = matchers
        self.ua: Any = _FirstMatch(lambda rules: ua_parser_rs.UserAgentExtractor(_versioned(rules)), list(ua), _UA_CUTS)
        self.os: Any = _FirstMatch(lambda rules: ua_parser_rs.OSExtractor(_versioned(rules)), list(os_), _OS_CUTS)
        first_device_rules: list[tuple[Any, ...]] = []

        def device_extractor(rules: list[Any]) -> Any:
            if not first_device_rules:
                first_device_rules.extend(_device_rules(rules))
            return ua_parser_rs.DeviceExtractor(_device_rules(rules))

        self.de: Any = _FirstMatch(
            device_extractor, [m for m in de if m.family in _DEVICE_FAMILIES_USED], _DEVICE_CUTS,
        )
        # The device families' first part as ua-parser-rs's rules: the crawler list and the
        # TV/console tokens go ahead of them in one extractor (lead_with_crawlers).
        self.first_device_rules = first_device_rules
        # The parts _crawler_or_device asks: the device families' own until the crawler
        # list leads them.
        self.crawlers_then_devices: tuple[Any, ...] = self.de.parts

    def lead_with_crawlers(self, lead: Any) -> None:
        """Ask `lead` — one extractor of the crawler list's rules, then the TV/console tokens'
        (_TV_CONSOLE_RULE), then first_device_rules (crawler_list.CrawlerList.load_ahead_of) —
        in place of the device families' first part. A call of an extractor costs a floor (a
        pass over the UA, its literals mapped to rules) beside its list's size: one extractor
        for the three saves two floors on every parse our bot tokens do not decide
        (bench/RESULTS.md, session 27).
        The first match in list order is a crawler's when any crawler pattern matches, else
        the TV tokens' when one occurs, and otherwise exactly the first part's answer."""
        self.crawlers_then_devices = (lead,) + self.de.parts[1:]

    def browser_and_os(self, ua: str) -> tuple[str, str]:
        """The browser and OS families, as families() reads them."""
        uam, osm = self.ua.extract(ua), self.os.extract(ua)
        return (uam.family if uam is not None else "Other", osm.family if osm is not None else "Other")

    def __call__(self, ua: str, _domains: Any) -> _RsResult:
        return _RsResult(self.ua.extract(ua), self.os.extract(ua), self.de.extract(ua))

    def families(self, ua: str) -> tuple[str, str, str]:
        """(browser, os, device) families, as _parse reads them from __call__'s result,
        without building that result (the per-UA path)."""
        uam, osm, dev = self.ua.extract(ua), self.os.extract(ua), self.de.extract(ua)
        return (
            uam.family if uam is not None else "Other",
            osm.family if osm is not None else "Other",
            dev.family if dev is not None else "Other",
        )


@dataclass(slots=True)
class _RsResult:
    user_agent: Any
    os: Any
    device: Any


def _build_resolver() -> tuple[_Resolver | None, Any, str]:
    try:
        import ua_parser
        from ua_parser import Domain
    except Exception:  # pragma: no cover - ua-parser is a hard dependency
        log.error("ua-parser is not installed: device detection uses token rules only")
        return None, None, "none"
    try:
        # ua-parser-rs only needs the regex *strings*, so the lazy builtins (no Python
        # re.compile) fit.
        return _RsResolver(ua_parser.load_lazy_builtins()), Domain.ALL, "ua-parser-rs"
    except Exception as e:
        log.warning("ua-parser-rs unavailable (%s); User-Agent parsing will be slow", e)
    try:
        if ua_parser.Re2Resolver is not None:
            return ua_parser.Re2Resolver(ua_parser.load_lazy_builtins()), Domain.ALL, "re2"
    except Exception as e:  # pragma: no cover
        log.warning("re2 resolver unavailable (%s)", e)
    try:
        # Pure-Python resolver: needs eagerly compiled matchers.
        return ua_parser.BasicResolver(ua_parser.load_builtins()), Domain.ALL, "basic"
    except Exception as e:  # pragma: no cover
        log.error("cannot build any ua-parser resolver (%s): token rules only", e)
        return None, None, "none"


def _get_resolver() -> tuple[_Resolver | None, Any]:
    global _resolver, _domain_all, RESOLVER_NAME
    if RESOLVER_NAME == "unloaded":
        with _resolver_lock:
            if RESOLVER_NAME == "unloaded":
                _resolver, _domain_all, RESOLVER_NAME = _build_resolver()
                _load_crawler_list()
                _load_android_models()
                _load_token_sets()
    return _resolver, _domain_all


def resolver_name() -> str:
    """Name of the ua-parser resolver in use (building it if needed):
    "ua-parser-rs" (native, fast), "re2", "basic" (pure Python, ~40x slower)
    or "none" (ua-parser missing: token rules only)."""
    _get_resolver()
    return RESOLVER_NAME


def _parse(ua: str) -> tuple[str, str, str]:
    """(browser family, os family, device family) via ua-parser."""
    resolver, domain_all = _get_resolver()
    if resolver is None:
        return "Other", "Other", "Other"
    if resolver.__class__ is _RsResolver:
        try:
            return resolver.families(ua)
        except UnicodeError:
            pass  # the general path below replaces lone surrogates
    try:
        r = resolver(ua, domain_all)
    except UnicodeError:
        # Lone surrogates cannot cross into Rust; replace them and retry.
        r = resolver(ua.encode("utf-8", "replace").decode("utf-8"), domain_all)
    uam, osm, dev = r.user_agent, r.os, r.device
    return (
        uam.family if uam is not None else "Other",
        osm.family if osm is not None else "Other",
        dev.family if dev is not None else "Other",
    )


# --------------------------------------------------------------------------
# Third-party lists, loaded with the resolver (see crawler_list, device_models)
# --------------------------------------------------------------------------

_crawlers = CrawlerList()
CRAWLER_PATTERNS = 0  # crawler-user-agents patterns in use (0: the list is not installed)


def _load_crawler_list() -> None:
    global _crawlers, CRAWLER_PATTERNS
    resolver = _resolver
    if isinstance(resolver, _RsResolver):
        # Natively, ahead of the TV/console tokens and the device families' first part, in
        # one extractor (_crawler_or_device); without the list, those two alone.
        rules = [_TV_CONSOLE_RULE, *resolver.first_device_rules]
        _crawlers, lead = CrawlerList.load_ahead_of(rules)
        if lead is None:
            lead = importlib.import_module("ua_parser_rs").DeviceExtractor(rules)
        resolver.lead_with_crawlers(lead)
    else:
        _crawlers = CrawlerList.load(native=False)
    CRAWLER_PATTERNS = _crawlers.patterns


_android_models: AndroidModels | None = None


def _load_token_sets() -> None:
    """Check the token tables natively when ua-parser-rs is in use (see _Tokens)."""
    if RESOLVER_NAME != "ua-parser-rs":
        return
    for tokens in (
        _BOT_TOKENS_IN_MOZILLA_SET, _BOT_TOKENS_SET, _BOTS_THEN_DESKTOPS_MOZILLA, _BOTS_THEN_DESKTOPS,
        _TV_CONSOLE_SET, _ANDROID_DESKTOP_SET,
    ):
        tokens.use_native()


def _load_android_models() -> None:
    global _android_models
    _android_models = AndroidModels.load()


def _android_model_class(ua: str) -> str | None:
    """An Android UA's model's class in Matomo's device list (see device_models)."""
    if not _android_models:
        return None
    model = android_model(ua)
    return _android_models.device_class(model) if model is not None else None


# --------------------------------------------------------------------------
# Token rules
# --------------------------------------------------------------------------

# Speed note: Python's re tries every branch of an alternation at every
# position, so one 40-branch "bot|crawl|...|okhttp" regex over a 200-char UA
# cost ~110 us - several times the Rust parse.  Token tables are therefore
# checked with `in` (C substring search, ~0.1 us each) and a regex only runs
# after a cheap literal prefilter hit.

class _Tokens:
    """The first token of a table (in table order) that occurs in a string, like
    ``next((t for t in tokens if t in s), None)``.

    With ua-parser-rs, one native call checks the whole table (an escaped-literal regex
    per token, run as one set; ~0.5 us for 30 tokens instead of ~2.5 us of ``in`` tests
    over a 200-character UA). The native extractor answers the first pattern in list
    order, and a literal regex matches exactly where ``in`` finds the token, so the answer
    is the same; strings Rust cannot take (lone surrogates) use the Python loop.
    """

    __slots__ = ("tokens", "_native")

    def __init__(self, tokens: tuple[str, ...]) -> None:
        self.tokens = tokens
        self._native: Any = None

    def use_native(self) -> None:
        import ua_parser_rs

        # The family is the token's index: ua-parser trims replacement text, and some
        # tokens start with a space.
        self._native = ua_parser_rs.DeviceExtractor(
            (f"(?:{_rust_literal(t)})", None, str(i), None, None) for i, t in enumerate(self.tokens)
        )

    def first(self, s: str) -> str | None:
        native = self._native
        if native is not None:
            try:
                m = native.extract(s)
            except UnicodeError:
                pass
            else:
                return self.tokens[int(m.family)] if m is not None else None
        for t in self.tokens:
            if t in s:
                return t
        return None


def _rust_literal(token: str) -> str:
    """`token` as a Rust regex matching exactly that text (escapes only its metacharacters)."""
    return "".join("\\" + c if c in _RUST_META else c for c in token)


_RUST_META: Final = frozenset("\\.+*?()|[]{}^$#&-~")


# Bots and non-browser HTTP clients.  beacon.js runs in a browser, so a hit
# from an HTTP library (curl, python-requests, okhttp, Java, Go...) is
# automation, not a visitor.
# Generic words (matched on ua.lower()) catch the big crawler families:
# Googlebot, bingbot, Baiduspider, Bytespider, YisouSpider, 360Spider,
# Sogou web/inst spider, Yahoo! Slurp, PetalBot, GPTBot, AhrefsBot...
# Not plain "sogou": SogouMobileBrowser / Sogou Explorer are real browsers and
# Sogou's crawlers all say "spider".
_BOT_WORDS = ("bot", "crawl", "spider", "slurp")
# The word regex captures the whole token ("Googlebot", "360Spider") for the
# name; (?<![\w.-]) only starts at token starts (no quadratic backtracking).
# (?<!cu)bot: "CUBOT" is an Android phone brand, not a bot.
_BOT_WORD_RE: Final = re.compile(
    r"(?<![\w.-])[\w.-]*?(?:(?<!cu)bot|crawl|spider|slurp)[\w.-]*", re.IGNORECASE
)
# Headless browsers, test/audit tools, HTTP libraries, link-preview fetchers
# (lower-case, matched on ua.lower()).  HTTP libraries send their own UA, never
# a "Mozilla/..." one, so a Mozilla UA is only checked against the short list
# of tokens that get appended to browser UAs.
_BOT_TOKENS_IN_MOZILLA = (
    "headlesschrome", "phantomjs", "lighthouse", "ptst/", "cypress/", "google-",
    "mediapartners-google", "facebookexternalhit", "meta-externalagent",
)
_BOT_TOKENS = _BOT_TOKENS_IN_MOZILLA + (
    "python-requests", "python-urllib", "python-httpx", "aiohttp/", "scrapy",
    "curl/", "wget/", "go-http-client", "java/", "okhttp", "apache-httpclient",
    "libwww-perl", "node-fetch", "axios/", "undici", "postmanruntime", "httrack",
    "ia_archiver", "whatsapp/", "feedfetcher-google",
)
_TOKEN_RE: Final = re.compile(r"[\w.!-]*\w")
_BOT_TOKENS_IN_MOZILLA_SET: Final = _Tokens(_BOT_TOKENS_IN_MOZILLA)
_BOT_TOKENS_SET: Final = _Tokens(_BOT_TOKENS)
# Lower case, matched on ua.lower() (see _ANDROID_DESKTOP_TOKENS, further down).
_ANDROID_DESKTOP_TOKENS = (
    "chromebook", "crosarc", "pixelbook", "build/r", "inspiron", "latitude", "vostro",
    "elitebook", "travelmate", "aspire", "satellite", "lifebook", "thinkpad", "ideapad",
    "macbook", "easynote", "compaq", " aio", "2in1", "netbook",
)
_ANDROID_DESKTOP_TOKEN_SET: Final = frozenset(_ANDROID_DESKTOP_TOKENS)
# The bot words and tools, then the Android-desktop tokens, in one table: one native call
# answers both questions of a parse (_bot_token). The first token in table order is a bot's
# when any bot token occurs, else the first Android-desktop token, exactly what each table
# alone would answer.
_BOTS_THEN_DESKTOPS_MOZILLA: Final = _Tokens(_BOT_WORDS + _BOT_TOKENS_IN_MOZILLA + _ANDROID_DESKTOP_TOKENS)
_BOTS_THEN_DESKTOPS: Final = _Tokens(_BOT_WORDS + _BOT_TOKENS + _ANDROID_DESKTOP_TOKENS)

# ua-parser UA families that are ordinary browsers: when a bot is detected by
# our tokens but ua-parser only saw the browser shell ("Chrome" for
# "... Chrome/69 ... SomeNewBot/1.0"), our token is the better name.
_GENERIC_BROWSER_FAMILIES: Final = frozenset(
    {
        "Other", "Chrome", "Chrome Mobile", "Chrome Mobile WebView", "Chromium",
        "Safari", "Mobile Safari", "Mobile Safari UI/WKWebView", "Firefox",
        "Firefox Mobile", "Edge", "IE", "Opera", "Apple Mail", "Android",
    }
)


def _bot_word(ua: str) -> str | None:
    # Phones and tablets named "...bot" (Cubot aside: "M bot 54", "IDbot553", "C Bot Tab
    # 70") write it in the model field of an Android UA; a crawler never does.
    model = android_model(ua) if "Android" in ua else None
    for m in _BOT_WORD_RE.finditer(ua):
        if model is None or m.group(0) not in model:
            return m.group(0).strip(".-") or "bot"
    return None


# What a parse has not asked yet: the device family (_parse_before_bots leaves it for
# _crawler_or_device, which asks it with the crawler list and the TV tokens in one native call) or the
# Android-desktop token (_bot_token finds it with the bot tokens, in most parses).
_UNASKED: Final = "\0unasked"


def _bot_token(ua: str, low: str) -> tuple[str | None, str | None]:
    """(name-ish token if the UA looks automated, else None; the first Android-desktop token
    in `low`, None if there is none, or _UNASKED when this did not find out)."""
    mozilla = low.startswith("mozilla/")
    # One pass for the words, the tools and the Android-desktop tokens: a word, listed
    # first, wins if present.
    t = (_BOTS_THEN_DESKTOPS_MOZILLA if mozilla else _BOTS_THEN_DESKTOPS).first(low)
    if t is None or t in _ANDROID_DESKTOP_TOKEN_SET:
        return None, t
    desktop: str | None = _UNASKED
    if t in _BOT_WORDS:
        word = _bot_word(ua)
        if word is not None:
            return word, desktop
        # only "cubot"-like hits or phone models; still check the tool tokens
        t = (_BOT_TOKENS_IN_MOZILLA_SET if mozilla else _BOT_TOKENS_SET).first(low)
    if t is not None:
        m = _TOKEN_RE.match(ua, low.find(t))
        return (m.group(0) if m is not None else t.strip("/-")), desktop
    return None, desktop


def _bot_name(ua_family: str, token: str | None) -> str:
    if ua_family not in _GENERIC_BROWSER_FAMILIES:
        return ua_family  # ua-parser recognised the bot/tool by name
    return token or ua_family


# Smart TVs, TV sticks/boxes, game consoles, VR headsets -> "other".
# Case-sensitive.  Checked before the Windows/Android rules because Xbox says
# "Windows NT 10.0" and Android TV / Fire TV look like tablets.
_TV_CONSOLE_TOKENS = (
    "SMART-TV", "Smart-TV", "SmartTV", "SMARTTV", "TV Safari", "Web0S", "webOS.TV",
    "NetCast", "HbbTV", "BRAVIA", "Android TV", "AndroidTV", "GoogleTV", "Google TV",
    "CrKey", "Roku", "AppleTV", "Apple TV", "tvOS", "VIDAA", "Opera TV", "MiTV",
    "MIBOX", "PlayStation", "PLAYSTATION", "Xbox", "Nintendo", "OculusBrowser",
)
# Fire TV models (AFTMM, AFTKA...); \b so that it cannot match "After".
_FIRE_TV_RE: Final = re.compile(r"\bAFT[A-Z]")
_TV_CONSOLE_SET: Final = _Tokens(_TV_CONSOLE_TOKENS)


# The TV/console tokens as one DeviceExtractor rule (any of them, case-sensitively), asked
# with the crawler list and the device families (_RsResolver.lead_with_crawlers): one rule,
# as only whether one occurs matters (_is_tv_or_console).
_TV_CONSOLE_BRAND: Final = "tv-console"
_TV_CONSOLE_RULE = (
    "(?:" + "|".join(_rust_literal(t) for t in _TV_CONSOLE_TOKENS) + ")", None, "tv", _TV_CONSOLE_BRAND, None,
)


def _is_tv_or_console(ua: str, tv: bool | None) -> bool:
    """`tv`: whether a TV/console token occurs, as _crawler_or_device found out (None: it did not)."""
    found = _TV_CONSOLE_SET.first(ua) is not None if tv is None else tv
    if found:
        return True
    return "AFT" in ua and _FIRE_TV_RE.search(ua) is not None


# HarmonyOS NEXT (ArkWeb) default UA: "Mozilla/5.0 (Phone; OpenHarmony 5.0) ...
# ArkWeb/4.1.6.1 Mobile".  DeviceType is Phone / Tablet / PC (2-in-1), and the
# trailing "Mobile" (DeviceCompat) is present on tablets too, so the
# DeviceType token decides.
_OHOS_TYPE_RE: Final = re.compile(r"\((Phone|Tablet|PC|2in1)\s*;\s*OpenHarmony")
_OHOS_CLASS: Final = {"Phone": "mobile", "Tablet": "tablet", "PC": "pc", "2in1": "pc"}

# "Tablet" (Firefox for Android tablets, misc. Android builds) - but not
# "Tablet PC 2.0", which old IE on ordinary Windows 7 desktops advertises.
_TABLET_WORD_RE: Final = re.compile(r"Tablet(?! PC)")
_KINDLE_MODEL_RE: Final = re.compile(r"\bKF[A-Z]{2,}\b")  # Kindle Fire: KFTRWI, KFMAWI...


def _is_tablet_token(ua: str) -> bool:
    if "Kindle" in ua or "Silk/" in ua:
        return True
    if "Tablet" in ua and _TABLET_WORD_RE.search(ua) is not None:
        return True
    return "KF" in ua and _KINDLE_MODEL_RE.search(ua) is not None


_MOBILE_OS: Final = frozenset(
    {
        "iOS", "Android", "HarmonyOS", "Windows Phone", "Windows Mobile", "KaiOS",
        "BlackBerry OS", "BlackBerry Tablet OS", "Symbian OS", "Symbian^3",
        "Firefox OS", "Tizen", "Sailfish", "Ubuntu Touch", "webOS", "MeeGo",
        "Maemo", "Bada", "Brew MP", "Nokia Series 40", "Nokia Series 30 Plus",
        "Symbian^3 Anna", "Symbian^3 Belle",
    }
)
_DESKTOP_OS: Final = frozenset({
    "Windows", "Mac OS X", "Mac OS", "Linux", "Chrome OS", "Ubuntu", "Kubuntu", "Xubuntu",
    "Lubuntu", "Debian", "Fedora", "Red Hat", "CentOS", "SUSE", "openSUSE",
    "Mint", "Linux Mint", "Gentoo", "Arch Linux", "Mandriva", "Slackware",
    "Mageia", "PCLinuxOS", "FreeBSD", "OpenBSD", "NetBSD", "DragonFly", "Solaris",
    "SunOS", "AIX", "IRIX", "HP-UX", "BeOS", "Haiku", "OS/2", "Deepin", "UOS",
})

# Token fallback when ua-parser gives no OS (or is unavailable).
_OS_TOKENS = (
    ("Windows Phone", "Windows Phone"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("iPod", "iOS"),
    ("Windows NT", "Windows"),
    ("CrOS", "Chrome OS"),
    ("Macintosh", "Mac OS X"),
    ("Mac OS X", "Mac OS X"),
    ("Linux", "Linux"),
    ("X11", "Linux"),
)

# In-app webviews: the host app is more useful than the engine ua-parser
# reports (Android WeChat is just "Chrome Mobile WebView" to ua-parser).
# In priority order: WeCom (wxwork) UAs also contain MicroMessenger; old
# WeChat/QQ X5 UAs also contain MQQBrowser (left to ua-parser).
_APP_TOKENS = (
    ("wxwork/", "WeCom"),
    ("MicroMessenger", "WeChat"),
    ("WindowsWechat", "WeChat"),
    ("MacWechat", "WeChat"),
    ("DingTalk", "DingTalk"),
    ("AlipayClient", "Alipay"),
    ("Lark/", "Feishu"),
    ("Feishu", "Feishu"),
    ("baiduboxapp", "Baidu App"),
    ("QQ/", "QQ"),  # mobile QQ app; must be "QQ/<digit>" at a word start
    ("__weibo__", "Weibo"),
    ("Weibo (", "Weibo"),
    ("aweme", "Douyin"),
    ("Quark/", "Quark"),
)
_QQ_APP_RE: Final = re.compile(r"\bQQ/\d")  # not MQQBrowser/, not QQBrowser/


def _app_name(ua: str) -> str | None:
    # (A native token set, as for the TV tokens, does not pay here: WeChat, the
    # commonest, is found by the second test.)
    for tok, name in _APP_TOKENS:
        if tok in ua:
            if tok == "QQ/" and _QQ_APP_RE.search(ua) is None:
                continue
            return name
    return None


# Phone-only app/browser tokens: with no OS recognised they mean a phone.
_MOBILE_APP_TOKENS = ("MicroMessenger", "MQQBrowser", "UCBrowser", "UCWEB", "baiduboxapp", "DingTalk")

_BROWSER_RENAMES: Final = {"WeChat Browser": "WeChat"}


# Base analysis kinds.  "other" is only ever a recognised TV / console / car / wearable
# (never refined by hints or screen).  A UA that names no platform at all is
# _UNIDENTIFIED: real browsers always name one, so it is a machine unless the hit itself
# proves a browser ran (beacon.js reported a screen, or Chromium sent Sec-CH-UA-Mobile);
# _refine decides.
_KNOWN: Final = 0
_UNIDENTIFIED: Final = 1

# Desktop platforms that ua-parser's OS list misses, as desktop apps (Office, Spotify,
# launchers) and old/rare systems write them.  Matched case-sensitively, in order.
_DESKTOP_OS_TOKENS = (
    ("Mac OS/", "Mac OS X"),  # Microsoft Office for Mac: "Word/16.43 (Mac OS/10.15.6; Desktop; ...)"
    ("Macintosh", "Mac OS X"),
    ("OSX", "Mac OS X"),
    ("os=Mac", "Mac OS X"),  # QuickTime
    ("macOS", "Mac OS X"),
    ("(win1", "Windows"), ("(win7", "Windows"), ("(win8", "Windows"),  # GOG Galaxy: "(win10 x64)"
    ("Windows", "Windows"),
    ("WinNT", "Windows"), ("Win64", "Windows"), ("Win32", "Windows"), ("MSOffice", "Windows"),
    ("CYGWIN", "Windows"),
    ("Desktop;", "Other"),  # Office apps' own device field
    ("OS/2", "OS/2"), ("BeOS", "BeOS"), ("Haiku", "Haiku"), ("AmigaOS", "AmigaOS"), ("Syllable", "Syllable"),
    ("Inferno", "Inferno"), ("WTOS", "Wyse ThinOS"),
)

# Android on laptops, desktops and Chromebooks (Android apps on ChromeOS send the
# device's model; ARC++ builds look like "Build/R76-12239"): a desktop, though the UA
# has the tablet shape ("Android" without "Mobile"). The tokens (_ANDROID_DESKTOP_TOKENS,
# with the bot tokens) are lower case, matched on ua.lower(); the build, case-sensitively.
_ANDROID_DESKTOP_BUILD_RE: Final = re.compile(r"Build/R\d+-\d")
_ANDROID_DESKTOP_SET: Final = _Tokens(_ANDROID_DESKTOP_TOKENS)


def _is_android_desktop(ua: str, desktop: str | None) -> bool:
    """`desktop`: the UA's first Android-desktop token as _bot_token found it (or _UNASKED)."""
    t = _ANDROID_DESKTOP_SET.first(ua.lower()) if desktop == _UNASKED else desktop
    if t is None:
        return False
    return t != "build/r" or _ANDROID_DESKTOP_BUILD_RE.search(ua) is not None


def _desktop_os_token(ua: str) -> str | None:
    for token, name in _DESKTOP_OS_TOKENS:
        if token in ua:
            return name
    return None


# A browser-shaped UA carrying a URL ("... (compatible; FooBot/1.0; +https://foo.com/bot)"):
# browsers never put one in their UA; crawlers point at their documentation.  The name is
# the product token before the URL.
_URL_BOT_RE: Final = re.compile(r"([A-Za-z][\w.-]*)(?:/[\w.-]*)?[^A-Za-z]{0,4}https?://")


def _url_bot_name(ua: str) -> str | None:
    if "http://" not in ua and "https://" not in ua:
        return None
    m = _URL_BOT_RE.search(ua)
    return m.group(1) if m is not None else "bot"


def _parse_before_bots(ua: str) -> tuple[str, str, str]:
    """_parse's (browser, os, device) families, the device family _UNASKED when the native
    resolver can ask it together with the crawler list (_crawler_or_device)."""
    resolver, _ = _get_resolver()
    if resolver.__class__ is _RsResolver:
        try:
            browser, os_family = resolver.browser_and_os(ua)
            return browser, os_family, _UNASKED
        except UnicodeError:
            pass  # _parse replaces lone surrogates
    return _parse(ua)


def _crawler_or_device(ua: str, dev_family: str) -> tuple[str | None, str, bool | None]:
    """(the crawler list's name for the UA or None, the device family, whether a TV/console
    token occurs — None when not found out). The device family is left as it is when a
    crawler is named (a bot either way)."""
    if dev_family != _UNASKED:
        return _crawlers.name(ua), dev_family, None
    resolver, _ = _get_resolver()
    if resolver.__class__ is not _RsResolver:  # pragma: no cover - _UNASKED comes from it
        return None, "Other", None
    # No UnicodeError here: the UA already crossed into Rust in _parse_before_bots (a lone
    # surrogate sent it down _parse's replacing path, which asks no _UNASKED).
    m = _first_answer(resolver.crawlers_then_devices, ua)
    if m is None:
        return None, "Other", False
    if m.brand == CRAWLER_BRAND:
        return crawler_name(m.family), dev_family, None
    if m.brand == _TV_CONSOLE_BRAND:  # rare: the device families asked on their own
        device = _first_answer(resolver.de.parts, ua)
        return None, device.family if device is not None else "Other", True
    return None, m.family, False


def _analyse(ua: str) -> tuple[str, str, str, int]:
    """UA-only classification: (device_class, browser, os, kind)."""
    if not ua or ua.isspace():
        # Every real browser sends a User-Agent.
        return "bot", "Other", "Other", _KNOWN

    ua_family, os_family, dev_family = _parse_before_bots(ua)
    # A bot: our tokens, else the crawler list, else a URL in a browser-shaped UA, else
    # ua-parser's "Spider" device rules. The device family is asked only when the tokens
    # find no bot (with the crawler list: _crawler_or_device).
    token, desktop = _bot_token(ua, ua.lower())
    tv: bool | None = None
    if token is None:
        token, dev_family, tv = _crawler_or_device(ua, dev_family)
        if token is None and "://" in ua and ua.startswith("Mozilla/"):
            token = _url_bot_name(ua)
    if token is not None or dev_family == "Spider":
        return "bot", _bot_name(ua_family, token), os_family, _KNOWN
    browser = _browser_name(ua, ua_family, os_family)  # judged on ua-parser's own OS
    os_family = _os_name(ua, os_family)
    device_class = _class_by_device(ua, os_family, dev_family, desktop, tv)
    if device_class is not None:
        return device_class, browser, os_family, _KNOWN
    return _class_by_os(ua, ua_family, browser, os_family, dev_family)


def _browser_name(ua: str, ua_family: str, os_family: str) -> str:
    browser = _BROWSER_RENAMES.get(ua_family, ua_family)
    if browser == "Apple Mail" and os_family not in ("Mac OS X", "iOS"):
        # ua-parser's catch-all for a bare "AppleWebKit/... (KHTML, like
        # Gecko)" (PlayStation, other embedded WebKits): not Apple Mail.
        browser = "Other"
    if "ArkWeb/" in ua and browser in ("Chrome", "Chrome Mobile"):
        browser = "ArkWeb"  # HarmonyOS NEXT system webview, not Chrome
    app = _app_name(ua)
    return app if app is not None else browser


def _os_name(ua: str, os_family: str) -> str:
    if "HarmonyOS" in ua or "OpenHarmony" in ua:
        # HarmonyOS 2-4 UAs read "Android 10; HarmonyOS; <model>" (AOSP
        # compatible) and ua-parser calls them Android; they are HarmonyOS.
        return "HarmonyOS"
    if os_family == "Other":
        for token, name in _OS_TOKENS:
            if token in ua:
                return name
    return os_family


def _class_by_device(ua: str, os_family: str, dev_family: str, desktop: str | None, tv: bool | None) -> str | None:
    """The device class the UA's device tokens decide, or None for the OS to decide.
    `desktop`, `tv`: as _is_android_desktop and _is_tv_or_console take them."""
    # iPhone / iPad first: the most common UAs, and never TVs, so they skip
    # the ~30 TV/console token checks.
    if dev_family == "iPad" or "iPad" in ua:
        return "tablet"
    if dev_family in ("iPhone", "iPod") or "iPhone" in ua or "iPod" in ua:
        return "mobile"

    if _is_tv_or_console(ua, tv):
        return "other"

    dt = _OHOS_TYPE_RE.search(ua) if "OpenHarmony" in ua else None
    if dt is not None:
        return _OHOS_CLASS[dt.group(1)]
    if os_family.startswith(("Windows Phone", "Windows Mobile")) or "Windows Phone" in ua or "IEMobile" in ua:
        return "mobile"
    if os_family in ("Android", "HarmonyOS") or "Android" in ua:
        return _android_class(ua, dev_family, desktop)
    if _is_tablet_device(ua, dev_family):
        return "tablet"
    return None


def _is_tablet_device(ua: str, dev_family: str) -> bool:
    return dev_family == "Kindle" or dev_family == "Generic Tablet" or _is_tablet_token(ua)


def _android_class(ua: str, dev_family: str, desktop: str | None) -> str:
    if _is_android_desktop(ua, desktop):
        return "pc"
    # Tablets, laptops and TV boxes by model; a listed phone model proves less than
    # the UA's shape (the same prefix often names both sizes), so the shape decides.
    listed = _android_model_class(ua)
    if listed is not None and listed != "mobile":
        return listed
    if _is_tablet_device(ua, dev_family):
        return "tablet"
    # Android's own convention (and Chrome's): phone browsers put "Mobile" in
    # the UA, tablets leave it out.  ("Mobi" also covers Opera's "Opera Mobi".)
    # Apps and HTTP stacks (Dalvik, okhttp, in-app players) follow no such
    # convention: without a browser's "Safari/" token, the far more common phone.
    if "Mobi" in ua or "Safari/" not in ua:
        return "mobile"
    return "tablet"


def _class_by_os(ua: str, ua_family: str, browser: str, os_family: str, dev_family: str) -> tuple[str, str, str, int]:
    """(device_class, browser, os, kind) when no device token decided."""
    if os_family == "iOS" and ("Macintosh" in ua or "x86_64" in ua):
        # CFNetwork apps on a Mac: ua-parser maps every CFNetwork/Darwin version to iOS,
        # but no iOS device is a "Power Macintosh" or x86_64.
        return "pc", browser, "Mac OS X", _KNOWN
    if os_family in _MOBILE_OS:
        return "mobile", browser, os_family, _KNOWN
    if os_family == "Other":
        desktop = _desktop_os_token(ua)
        if desktop is not None:
            return "pc", browser, desktop, _KNOWN
    if os_family in _DESKTOP_OS or os_family.startswith("Windows"):
        return _desktop_os_class(ua, browser, os_family)
    if (
        os_family != "Other"
        or dev_family in ("Generic Smartphone", "Generic Feature Phone")
        or any(t in ua for t in _MOBILE_APP_TOKENS)
        or _QQ_APP_RE.search(ua)
    ):
        # A phone-only app/webview token, or some OS ua-parser knows that is
        # neither a desktop nor a known mobile one (feature-phone systems mostly).
        return "mobile", browser, os_family, _KNOWN
    return "bot", _unidentified_name(ua, ua_family), os_family, _UNIDENTIFIED


def _desktop_os_class(ua: str, browser: str, os_family: str) -> tuple[str, str, str, int]:
    if os_family == "Mac OS X" and "Mobile/" in ua:
        # A real Mac never sends "Mobile/<build>"; iPad in-app webviews in
        # desktop mode do.  (touch points are handled in _refine)
        return "tablet", "Mobile Safari" if browser == "Safari" else browser, "iOS", _KNOWN
    if "Mobi" in ua:
        # Desktop OS with a mobile marker: Windows 10 Mobile
        # ("Windows NT 10.0; ARM; Lumia"), Ubuntu Touch / Linux phones.
        return "mobile", browser, os_family, _KNOWN
    return "pc", browser, os_family, _KNOWN


def _unidentified_name(ua: str, ua_family: str) -> str:
    if ua_family not in _GENERIC_BROWSER_FAMILIES:
        return ua_family
    m = _TOKEN_RE.search(ua)
    return m.group(0)[:40] if m is not None else "Other"


# Screen buckets (shorter side, CSS px):
#   1: < 600   phones (320-480 in practice, even "Max"/"Ultra" models)
#   2: < 1100  tablets (iPad mini 744 .. iPad Pro 13" 1032, Android tablets
#              and unfolded foldables 600-900) - but also laptops (768-900),
#              so this bucket only means "tablet" together with touch
#   3: >= 1100 desktop monitors / TVs
_PHONE_MAX: Final = 600
_TABLET_MAX: Final = 1100


# Interned results: the cache holds up to 65536 keys but only a few hundred
# distinct (class, browser, os) triples, so entries share Device objects (less
# memory, and no ~0.5 us frozen-dataclass construction per miss).  Bounded,
# since bot names come from arbitrary UA tokens.
_INTERN: dict[tuple[str, str, str], Device] = {}
_INTERN_MAX: Final = 4096


def _device(cls: str, browser: str, os_family: str) -> Device:
    key = (cls, browser, os_family)
    d = _INTERN.get(key)
    if d is None:
        d = Device(cls, browser, os_family)
        if len(_INTERN) < _INTERN_MAX:
            _INTERN[key] = d
    return d


def _class_from_evidence(ch: int | None, sb: int, tb: int) -> str | None:
    """Device class for a UA that names no platform, from what the hit itself shows: a
    screen size (only beacon.js in a browser reports one) or Chromium's Sec-CH-UA-Mobile.
    None: no sign that a browser ran at all."""
    if sb:
        if sb == 1 and ch != 0:
            return "mobile"
        return "tablet" if sb == 2 and tb else "pc"
    if ch is not None:
        return "mobile" if ch == 1 else "pc"
    return None


def _refine(base: tuple[str, str, str, int], ch: int | None, sb: int, tb: int) -> Device:
    cls, browser, os_family, kind = base
    if kind == _UNIDENTIFIED:
        evident = _class_from_evidence(ch, sb, tb)
        if evident is None:
            return _device(cls, browser, os_family)  # a machine: named by its UA's first token
        return _device(evident, "Other", os_family)
    if cls == "bot":
        return _device(cls, browser, os_family)  # bots are never reclassified

    if cls == "pc" and os_family == "Mac OS X" and tb == 2:
        # iPadOS Safari asks for desktop sites by default and then sends a
        # Macintosh UA; navigator.maxTouchPoints is 5 on iPad and 0 on every
        # real Mac.  (> 1, not > 0: DevTools touch emulation reports 1.)
        cls, os_family = "tablet", "iOS"
        if browser == "Safari":
            browser = "Mobile Safari"

    if ch == 1:
        # Sec-CH-UA-Mobile ?1: Chromium says it serves a phone layout; trust
        # it over a frozen/reduced or desktop-mode UA.  Not for known TVs /
        # consoles, which stay "other".
        if cls in ("pc", "tablet"):
            cls = "mobile"
    elif ch == 0:
        # ?0: not a phone.  A "mobile" UA with ?0 is either an Android tablet
        # with an odd UA (real multi-touch) or a desktop Chromium emulating a
        # phone (DevTools / UA-switcher: 0 or 1 touch point; WebKit on iOS
        # never sends client hints at all).  A tablet stays a tablet.
        if cls == "mobile":
            cls = "tablet" if tb == 2 else "pc"

    if cls == "pc" and os_family == "Linux" and sb == 1 and tb == 2:
        # Chrome/Samsung Internet "desktop site" mode on an Android phone
        # sends "X11; Linux x86_64" (and Sec-CH-UA-Mobile ?0, by design).  No
        # Linux desktop has a multi-touch screen under 600 CSS px.  (Tablets
        # in desktop mode stay "pc": indistinguishable from touch laptops.)
        cls = "mobile"

    return _device(cls, browser, os_family)


_CH_VALUES: Final = {"?1": 1, "?0": 0, "1": 1, "0": 0}


def _coerce_ua(ua: Any) -> str:
    if ua is None:
        return ""
    if isinstance(ua, str):
        s = ua
    elif isinstance(ua, (bytes, bytearray, memoryview)):
        s = bytes(ua).decode("utf-8", "replace")
    else:
        s = str(ua)
    return s[:MAX_UA_LEN] if len(s) > MAX_UA_LEN else s


def _int(v: Any) -> int:
    try:
        return int(float(v))
    except Exception:
        return 0


def _screen_bucket(w: int, h: int) -> int:
    if w <= 0 or h <= 0:
        return 0
    s = w if w < h else h
    return 1 if s < _PHONE_MAX else (2 if s < _TABLET_MAX else 3)


class DeviceClassifier:
    """Thread-safe, never-raising, cached UA classifier.

    The cache holds whole results keyed on the hash of (UA, hint, screen bucket,
    touch bucket), so a hit returns the very same Device object.
    """

    def __init__(self, cache_size: int = 65536, memo_size: int = 8192):
        _get_resolver()  # build the (shared) resolver now, not on the first hit
        self.resolver_name = RESOLVER_NAME
        # Keyed by the arguments' hash, not the User-Agent itself (enrich/hashed_cache.py):
        # ~300 bytes an entry less when every visitor brings a new User-Agent.
        self._cached: HashedCache[Device] = HashedCache(self._compute, int(cache_size), atomic_answers=True)
        # _analyse's answers by version_masked(UA): what a miss above asks first.
        self._memo: HashedCache[tuple[str, str, str, int]] = HashedCache(_analyse, int(memo_size))

    def _compute(self, ua: str, ch: int | None, sb: int, tb: int) -> Device:
        try:
            memo = self._memo
            analysed = memo.under(version_masked(ua), ua) if memo.maxsize else _analyse(ua)
            return _refine(analysed, ch, sb, tb)
        except Exception:  # pragma: no cover - defensive, must never raise
            log.exception("device classification failed for %r", ua[:120])
            return _OTHER

    def classify(
        self,
        ua: Any,
        ch_mobile: Any = None,
        screen_w: Any = 0,
        screen_h: Any = 0,
        touch_points: Any = 0,
    ) -> Device:
        # Typed Any: compiled (collector/native.py), an argument's annotation is checked
        # on the way in, and any input must yield a Device (the module docstring).
        # Fast path: plain str / ints, as the collector passes them.  Anything
        # odd raises TypeError somewhere here and takes the coercing path.
        try:
            if ua.__class__ is not str or len(ua) > MAX_UA_LEN:
                raise TypeError
            ch = None
            if ch_mobile is not None:
                ch = _CH_VALUES.get(ch_mobile)
                if ch is None and ch_mobile:
                    ch = _CH_VALUES.get(ch_mobile.strip())
            if screen_w > 0 and screen_h > 0:
                s = screen_w if screen_w < screen_h else screen_h
                sb = 1 if s < _PHONE_MAX else (2 if s < _TABLET_MAX else 3)
            else:
                sb = 0
            tb = 2 if touch_points > 1 else (1 if touch_points > 0 else 0)
            return self._cached(ua, ch, sb, tb)
        except Exception:
            return self._classify_slow(ua, ch_mobile, screen_w, screen_h, touch_points)

    def _classify_slow(self, ua: Any, ch_mobile: Any, screen_w: Any, screen_h: Any, touch_points: Any) -> Device:
        try:
            s = _coerce_ua(ua)
            ch = None
            if ch_mobile is not None:
                if isinstance(ch_mobile, bytes):
                    ch_mobile = ch_mobile.decode("latin-1")
                ch = _CH_VALUES.get(str(ch_mobile).strip())
            sb = _screen_bucket(_int(screen_w), _int(screen_h))
            t = _int(touch_points)
            tb = 2 if t > 1 else (1 if t > 0 else 0)
            return self._cached(s, ch, sb, tb)
        except Exception:  # pragma: no cover - defensive
            log.exception("device classification failed")
            return _OTHER

    def cache_info(self) -> Any:
        return self._cached.cache_info()

    def memo_info(self) -> Any:
        """The version memo's (hits, misses, maxsize, currsize)."""
        return self._memo.cache_info()

    def cache_clear(self) -> None:
        self._cached.cache_clear()
        self._memo.cache_clear()
