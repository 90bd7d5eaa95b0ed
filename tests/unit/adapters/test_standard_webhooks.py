"""Standard Webhooks signatures: the documented algorithm, its tolerance and rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac

from devmesh.adapters.standard_webhooks import StandardWebhookVerifier, sign

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()
NOW = 1_800_000_000
BODY = b'{"type":"build.completed"}'


def headers(*, secret: str = SECRET, stamp: int = NOW, msg_id: str = "msg_1") -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret=secret, msg_id=msg_id, timestamp=stamp, body=BODY),
    }


def verifier() -> StandardWebhookVerifier:
    return StandardWebhookVerifier(clock=lambda: NOW)


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body_under_the_decoded_key() -> None:
    expected = hmac.new(b"k" * 32, f"msg_1.{NOW}.".encode() + BODY, hashlib.sha256).digest()

    assert headers()["webhook-signature"] == "v1," + base64.b64encode(expected).decode()


def test_a_signed_delivery_within_five_minutes_verifies() -> None:
    assert verifier().verify(secret=SECRET, headers=headers(stamp=NOW - 299), body=BODY)


def test_a_timestamp_more_than_five_minutes_away_is_refused_either_way() -> None:
    assert not verifier().verify(secret=SECRET, headers=headers(stamp=NOW - 301), body=BODY)
    assert not verifier().verify(secret=SECRET, headers=headers(stamp=NOW + 301), body=BODY)


def test_a_changed_body_or_another_secret_is_refused() -> None:
    assert not verifier().verify(secret=SECRET, headers=headers(), body=BODY + b" ")
    assert not verifier().verify(secret=SECRET, headers=headers(secret=OTHER), body=BODY)


def test_any_one_of_several_signatures_verifies_while_the_sender_rotates() -> None:
    sent = headers(secret=OTHER)
    sent["webhook-signature"] += " " + headers()["webhook-signature"]

    assert verifier().verify(secret=SECRET, headers=sent, body=BODY)


def test_missing_headers_or_a_malformed_secret_are_refused() -> None:
    for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        sent = headers()
        del sent[missing]
        assert not verifier().verify(secret=SECRET, headers=sent, body=BODY)
    assert not verifier().verify(secret="whsec_???", headers=headers(), body=BODY)


def test_the_delivery_id_is_the_webhook_id() -> None:
    assert verifier().delivery_id(headers(msg_id="msg_9")) == "msg_9"
