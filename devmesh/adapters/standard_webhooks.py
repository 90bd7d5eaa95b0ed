"""Standard Webhooks (https://www.standardwebhooks.com): a verifier any tool can use.

The sender signs ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 under
the secret (``whsec_`` + base64 of the key bytes) and sends ``v1,<base64>`` in
``webhook-signature`` (space-separated, several while it rotates keys). A timestamp
more than five minutes from now is refused, so a captured delivery cannot be
replayed later; the receiver's deduplication by ``webhook-id`` covers the five
minutes. Written to the specification rather than with the ``standardwebhooks``
package: the algorithm is these few lines, and the package parses the body too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

__all__ = ["SECRET_PREFIX", "TOLERANCE_SECONDS", "StandardWebhookVerifier", "sign"]

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _key(secret: str) -> bytes | None:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return None


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value a sender would send (``v1,<base64>``)."""
    key = _key(secret)
    if key is None:
        raise ValueError("a Standard Webhooks secret is 'whsec_' and base64")
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class StandardWebhookVerifier:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def verify(self, *, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        msg_id = _header(headers, "webhook-id")
        stamp = _header(headers, "webhook-timestamp")
        signatures = _header(headers, "webhook-signature")
        key = _key(secret) if secret else None
        if not msg_id or not stamp or not signatures or not key:
            return False
        try:
            timestamp = int(stamp)
        except ValueError:
            return False
        if abs(self._clock() - timestamp) > TOLERANCE_SECONDS:
            return False
        expected = sign(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body)
        expected_bytes = expected.encode()
        # Compare against every v1 signature, without stopping at the first match.
        matched = False
        for candidate in signatures.split():
            if candidate.startswith("v1,"):
                matched |= hmac.compare_digest(candidate.encode(), expected_bytes)
        return matched

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return _header(headers, "webhook-id")
