"""Webhook signatures and the retry schedule: pure, shared by the sender and the docs' verifier.

A delivery is a POST of a JSON body with two headers:

    X-EB-Timestamp: 1764400000                      (epoch seconds when it was sent)
    X-EB-Signature: sha256=HEX                      HMAC-SHA256(secret, f"{timestamp}.{body}")

The timestamp is inside the signed text, so a captured delivery cannot be replayed
later with a fresh timestamp; a receiver rejects timestamps older than a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-EB-Timestamp"
SIGNATURE_HEADER = "X-EB-Signature"
# A receiver should refuse deliveries signed longer ago than this (seconds).
DEFAULT_TOLERANCE = 300

# Attempts of one delivery, and the wait before attempt n+1: BASE × 2^(n-1), at most MAX.
MAX_ATTEMPTS = 8
BACKOFF_BASE = 10.0
BACKOFF_MAX = 3600.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(secret: str, timestamp_header: str, signature_header: str, body: bytes, now: float,
           tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """What a receiver does: the signature matches (in constant time) and is recent."""
    if not timestamp_header.isdigit() or abs(now - int(timestamp_header)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp_header), body), signature_header)


def backoff(attempts: int, base: float = BACKOFF_BASE) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (1, 2, …)."""
    return min(base * 2 ** (attempts - 1), BACKOFF_MAX)
