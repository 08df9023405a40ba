"""A tiny HTTP client on the standard library, for tests that talk to a real process."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request


def request(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 10.0):
    """(status, headers, body bytes); HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def get_json(url: str, query: dict | None = None, headers: dict | None = None):
    if query:
        url += "?" + urllib.parse.urlencode(query)
    status, _, body = request("GET", url, headers=headers)
    return status, json.loads(body) if body else None


def post(url: str, payload, headers: dict | None = None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, _, answer = request("POST", url, body, {"Content-Type": "text/plain", **(headers or {})})
    return status, json.loads(answer) if answer else None
