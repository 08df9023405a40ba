"""App keys and tokens: made with `secrets`, tokens stored only as SHA-256 hashes.

An app key is not a secret (it sits in every page of the platform); it must only be
unguessable, so nobody can write into a platform's counts without having seen its pages.
Admin, kit and read tokens are secrets: shown once, stored hashed, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

# 24 random bytes = 192 bits, 32 URL-safe characters ([A-Za-z0-9_-]): within the
# protocol's 64-character `k`, and free of the braces and control characters it forbids.
APP_KEY_BYTES = 24
TOKEN_BYTES = 32
ADMIN_TOKEN_PREFIX = "eba_"
KIT_TOKEN_PREFIX = "ebk_"
READ_TOKEN_PREFIX = "ebr_"


def new_app_key() -> str:
    return secrets.token_urlsafe(APP_KEY_BYTES)


def new_token(prefix: str) -> str:
    """A secret; the prefix tells a reader which kind of token a leaked string is."""
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_matches(given: str, stored_hashes: Iterable[str]) -> str | None:
    """The stored hash `given` matches, or None; compares against every hash, every time.

    Each comparison is constant-time, and the loop never stops early, so the time taken
    tells nothing about which token, or how much of one, was right.
    """
    given_hash = token_hash(given) if given else ""
    found = None
    for stored in stored_hashes:
        # An empty stored hash (no token issued) matches nothing, not even an empty token.
        if hmac.compare_digest(given_hash.encode(), stored.encode()) and given_hash and stored:
            found = stored
    return found
