"""Secrets in page URLs: removed at ingest, before anything is journaled or stored.

Single sign-on and password-reset links put credentials in the address bar
(`?ticket=ST-…` of CAS, `?token=`, `#access_token=` of OAuth's implicit flow,
`;jsessionid=` of Java servers). A page URL is a dimension value that the read API
serves to whoever may read the app's figures: such a value must never reach it. Every
transport (GET pixel, POST JSON, the appendix-A shape) becomes an event whose page URL
passes through `SecretStripper.strip` in hit/ingest.py, so none is missed.

A parameter whose name is on the list (case-insensitive) is removed with its value, in
the query and in a routed fragment's query alike (`#/course?token=…`): the page then is
the very page its secret-free address names, and counts as one with it. `;jsessionid=…`
path parameters are removed too. Other parameters keep their spelling and order.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

# The default list: names that carry credentials or session ids on the platforms we
# know (CAS tickets, OAuth tokens and codes' secrets, servlet/PHP session ids, signed
# storage URLs), and none that education platforms use for content: not `id`, `code`
# (course and class codes), `key` or `kw` (search words), `sign` (sign-in pages).
DEFAULT_SECRET_PARAMS = (
    "token", "access_token", "refresh_token", "id_token", "auth", "authorization", "auth_token",
    "ticket", "password", "passwd", "pwd", "secret", "client_secret",
    "api_key", "apikey", "sid", "sessionid", "session_id", "jsessionid", "phpsessid",
    "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "ossaccesskeyid",
)


_SEPARATORS: Final = "?&;#/"  # what may come right before a parameter's name (SecretStripper._maybe)


class SecretStripper:
    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = frozenset(name.strip().lower() for name in names if name.strip())
        # A quick test that most URLs fail: no listed name right before a '=' (after a
        # separator) — then the URL is returned as it is, at the cost of one search.
        alternatives = "|".join(sorted((re.escape(n) for n in self.names), key=len, reverse=True))
        self._maybe = re.compile(rf"[?&;#/]({alternatives})=", re.IGNORECASE) if self.names else None
        # The regex answered by looking at each '=' (maybe_secret), which holds while every
        # name is ASCII without a separator or '=' (the default list: always); else 0.
        plain = all(name.isascii() and not any(c in name for c in _SEPARATORS + "=") for name in self.names)
        self._longest = max(map(len, self.names)) if plain and self.names else 0

    def strip(self, url: str) -> str:
        """`url` without the listed parameters (query, routed fragment) nor `;jsessionid=`."""
        if self._maybe is None or "=" not in url:
            return url
        if "%" not in url and not self.maybe_secret(url):  # (an escaped name is checked below)
            return url
        base, hash_sign, fragment = url.partition("#")
        base = self._strip_part(base)
        if hash_sign:
            fragment = self._strip_part(fragment, fragment_only=not fragment.startswith(("/", "!")))
        return base + hash_sign + fragment if hash_sign and fragment else base

    def maybe_secret(self, url: str) -> bool:
        """`self._maybe.search(url) is not None` (a listed name right after a separator and
        right before a '=', in any case), mostly without the regex: case-insensitive over
        every separator of a URL that is not ASCII, it took ~24,000 instructions a page URL
        with a query (bench/RESULTS.md, session 17). The name before each '=' is the text
        from the nearest separator, when that lies within the longest name's reach; the
        regex's own answer is asked for a name that is not ASCII (its case folding pairs
        non-ASCII letters with ASCII ones: K and k, ſ and s), or when the names are not plain."""
        if self._maybe is None:
            return False
        longest = self._longest
        if not longest:
            return self._maybe.search(url) is not None
        equals = url.find("=")
        while equals >= 0:
            low = equals - longest - 1 if equals > longest else 0
            separator = -1
            for mark in _SEPARATORS:  # (not max() of five: a call of the builtin, ~600 instructions)
                found = url.rfind(mark, low, equals)
                if found > separator:
                    separator = found
            if separator >= 0:
                name = url[separator + 1:equals]
                if not name.isascii():
                    return self._maybe.search(url) is not None
                if name.lower() in self.names:
                    return True
            equals = url.find("=", equals + 1)
        return False

    def _strip_part(self, part: str, fragment_only: bool = False) -> str:
        """A path-and-query (or a fragment) without its secret parameters. A fragment that is
        not a route (`#access_token=…&state=…`) is all parameters."""
        if fragment_only:
            return self._kept_params(part)
        path, question, query = part.partition("?")
        path = self._strip_path_params(path)
        if not question:
            return path
        kept = self._kept_params(query)
        return path + "?" + kept if kept else path

    def _strip_path_params(self, path: str) -> str:
        if ";" not in path:
            return path
        segments = []
        for segment in path.split("/"):
            name, semi, params = segment.partition(";")
            if semi:
                kept = [p for p in params.split(";") if not self._is_secret(p)]
                segment = ";".join([name, *kept])
            segments.append(segment)
        return "/".join(segments)

    def _kept_params(self, query: str) -> str:
        return "&".join(p for p in query.split("&") if p and not self._is_secret(p))

    def _is_secret(self, param: str) -> bool:
        name = param.partition("=")[0]
        return unquote(name).strip().lower() in self.names
