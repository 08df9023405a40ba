"""The version memo's key (enrich/device.py, issue 17): a User-Agent with the digits of its
browser versions masked, so that new User-Agents differing from a known one only there share
its classification. Compiled by mypyc (collector/native.py): it runs on every User-Agent
the device cache has not seen.
"""

from __future__ import annotations

from typing import Final

from collector.native import c_module

# Product tokens whose version number decides nothing here. A User-Agent seen for the first
# time is usually a known one with a newer browser or app build (Chrome/124.0.6367.82 ->
# Chrome/125.0.6422.53): the memo keys _analyse's answer on the User-Agent with these
# versions' digits masked, so such a UA costs a dictionary lookup, not a parse.
# (Final: compiled, each is then a C variable, not a lookup in the module's dict per use.)
#
# Why the answer cannot differ within one key (tests/test_device_memo.py checks it on the
# labelled corpus, with random digits in every masked place):
# * only digits change, one for one: lengths, dots and every other character stay, so
#   ua-parser's bounded gaps (".{0,100}") and version shapes ("(\d+)\.(\d+)") see the same
#   text; a \d, [0-9] or \w treats every digit alike;
# * a version is masked only right after "<token>/" (the token at the start, after a space or
#   after a "/": "XiaoMi/MiuiBrowser/17.1.80321") and only when a space, ";", ")", "(" or the
#   end follows it: none of the regexes in
#   use (ua-parser's, the crawler list's, ours, Matomo's models) has a digit literal that can
#   fall inside one. Not masked, for that reason: versions that run on into "/"
#   ("UCBrowser/8.5.3.246/145", where the crawler pattern "008/" could match), tokens whose
#   version picks a family (NokiaBrowser/7.3 is Symbian Anna, HbbTV/1.1.1 names the TV's
#   maker, Darwin/ and CFNetwork/ map to iOS or macOS versions), OS versions and models
#   ("Android 13", "iPhone OS 17_2", "SM-T870": not "<token>/<version>").
# * WeChat's client version in hex, right after its version ("MicroMessenger/8.0.33(0x18002129)",
#   "…8.0.47.2560(0x28002F35)"): a new WeChat build changes both. Masked class for class (a
#   digit -> 0, A-F -> A, a-f -> a), so a \d, [A-Z] or \w sees the same text there too.
_VERSION_TOKENS: Final = frozenset({
    "AppleWebKit", "Safari", "Chrome", "Version", "CriOS", "GSA", "Firefox", "FxiOS", "OPR",
    "Edg", "EdgA", "EdgiOS", "SamsungBrowser", "YaBrowser", "ArkWeb", "HuaweiBrowser",
    "MiuiBrowser", "VivoBrowser", "HeyTapBrowser", "UCBrowser", "MQQBrowser", "QQBrowser", "QQ",
    "MicroMessenger", "XWEB", "MMWEBSDK", "DingTalk", "baiduboxapp", "Quark",
})
# As bytes tables: the slices masked are ASCII (digits, dots, hex), and bytes.translate with its
# +encode/decode costs about half of str.translate, which looks each new character up in a dict.
_MASK_DIGITS: Final = bytes.maketrans(b"123456789", b"000000000")
_MASK_HEX: Final = bytes.maketrans(b"123456789BCDEFbcdef", b"000000000AAAAAaaaaa")
_WECHAT: Final = "MicroMessenger"
# The C form (enrich/_ua_mask.c: one pass over a copy of the string, ~1/10 of this form's
# instructions), or None when not built; version_masked_py below is its reference.
_C_MASK: Final = c_module("collector.enrich._ua_mask")
_TOKENS: Final = tuple(sorted(_VERSION_TOKENS))  # the C form's argument


def version_masked(ua: str) -> str:
    """`ua` with the digits of its _VERSION_TOKENS versions made 0 (see version_masked_py)."""
    if _C_MASK is not None:
        masked: str = _C_MASK.version_masked(ua, _TOKENS, _WECHAT)
        return masked
    return version_masked_py(ua)


def version_masked_py(ua: str) -> str:
    """`ua` with the digits of its _VERSION_TOKENS versions made 0 ("Chrome/124.0.6367.82"
    -> "Chrome/000.0.0000.00"): the version memo's key. The same `ua` when it has none.

    A token counts at the start of `ua`, after a space or after a "/", right before a "/"."""
    pieces = ua.split("/")
    last = len(pieces) - 1
    masked = False
    for i in range(last):
        before = pieces[i]
        space = before.rfind(" ")
        token = before[space + 1:]
        if token not in _VERSION_TOKENS:
            continue
        after = pieces[i + 1]
        end = _version_end(after, i + 1 == last)
        if end:
            version = _masked(after[:end], _MASK_DIGITS)
            hex_end = _hex_end(after, end) if token == _WECHAT else 0  # WeChat's hex build, when it follows
            if hex_end:
                pieces[i + 1] = version + _masked(after[end:hex_end], _MASK_HEX) + after[hex_end:]
            else:  # (no translate of an empty slice: each call costs ~1,600 instructions)
                pieces[i + 1] = version + after[end:]
            masked = True
    return "/".join(pieces) if masked else ua


def _version_end(text: str, at_the_end: bool) -> int:
    """The length of the version `text` starts with — digits and dots ending in a digit, then a
    space, ";", ")", "(" or the User-Agent's end (`at_the_end`: no "/" follows `text`) — or 0.
    A version running on into the next "/" is no version here (see _VERSION_TOKENS)."""
    n = len(text)
    end = 0
    while end < n and (48 <= ord(text[end]) <= 57 or ord(text[end]) == 46):  # a digit or "." (as C ints)
        end += 1
    if end == 0 or text[end - 1] == ".":
        return 0
    if end < n:
        return end if text[end] in " ;)(" else 0
    return end if at_the_end else 0


def _masked(ascii_text: str, table: bytes) -> str:
    """`ascii_text` (digits, dots, hex: ASCII only) through a bytes translation table."""
    return ascii_text.encode("ascii").translate(table).decode("ascii")


def _hex_end(text: str, start: int) -> int:
    """Where WeChat's "(0x<hex digits>)" that `text` has at `start` ends (after its ")"), or 0."""
    if not text.startswith("(0x", start):
        return 0
    end = start + 3
    n = len(text)
    while end < n and text[end] in "0123456789ABCDEFabcdef":
        end += 1
    return end + 1 if end > start + 3 and end < n and text[end] == ")" else 0
