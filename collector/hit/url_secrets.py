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


class SecretStripper:
    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = frozenset(name.strip().lower() for name in names if name.strip())
        # A quick test that most URLs fail: no listed name right before a '=' (after a
        # separator) — then the URL is returned as it is, at the cost of one search.
        alternatives = "|".join(sorted((re.escape(n) for n in self.names), key=len, reverse=True))
        self._maybe = re.compile(rf"[?&;#/]({alternatives})=", re.IGNORECASE) if self.names else None

    def strip(self, url: str) -> str:
        """`url` without the listed parameters (query, routed fragment) nor `;jsessionid=`."""
        if self._maybe is None or "=" not in url:
            return url
        if "%" not in url and self._maybe.search(url) is None:  # (an escaped name is checked below)
            return url
        base, hash_sign, fragment = url.partition("#")
        base = self._strip_part(base)
        if hash_sign:
            fragment = self._strip_part(fragment, fragment_only=not fragment.startswith(("/", "!")))
        return base + hash_sign + fragment if hash_sign and fragment else base

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
