"""The provider kit's upstream HTTP pieces: request URLs, ``Retry-After`` and rate-limit
reset headers, and upstream text made safe to show.

Upstream words reach callers only through ``Redactor.excerpt``: nothing from a 401 or
403 (a refusal's body is where a proxy echoes the credentials it refused), and from
any other answer a short excerpt with every credential value in use cut out, in the
encodings it travels in (as sent, base64 of ``user:pass``, URL-encoded) plus anything
shaped like an ``Authorization`` value. ToolService scrubs every ``AdapterError`` a
provider raises with the same redactor, so a provider that forgets is still covered
for the credentials ToolService knows of; a provider adds what only it knows (a
session cookie it obtained) with ``Redactor.add``.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import re
import time
from collections.abc import Iterable
from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx

from devmesh.domain.errors import DevMeshError
from devmesh.domain.models import Credentials

__all__ = [
    "EXCERPT_CHARS",
    "MAX_RETRY_AFTER_S",
    "REDACTED",
    "Redactor",
    "join_url",
    "parsed_url",
    "rate_limit_wait",
    "retry_after",
]

# An upstream's Retry-After is honoured up to this; past it the number says more
# about the upstream than about when to come back.
MAX_RETRY_AFTER_S = 300.0
EXCERPT_CHARS = 200
REDACTED = "[redacted]"
_SILENT_STATUSES = frozenset({401, 403, 407})
# Header-shaped credentials, whoever's they are: "Bearer abc", "Basic dXNlcjpw", and
# header lines a proxy might echo ("Authorization: ...", "Cookie: ...").
_AUTH_VALUE = re.compile(r"(?i)\b(bearer|basic|token|digest)(\s+)[A-Za-z0-9._~+/=:-]{4,}")
_AUTH_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|x-upstream-token|"
    r"private-token|x-api-key)(\"?\s*[:=]\s*\"?)[^\"\r\n,}]+"
)
_MAX_SECRETS = 32


def join_url(base: str | httpx.URL, path: str) -> httpx.URL:
    """``base`` with ``path`` appended to its path; no userinfo, query or fragment of
    ``base`` survives (a tool stored before base_url was checked may still have them).

    ``path`` is taken as already percent-encoded, as the client's ``quote`` left it.
    """
    return _joined(str(base), path)


def parsed_url(url: str) -> httpx.URL:
    """``httpx.URL(url)``, parsed once for every call that asks for the same text.

    Parsing costs about 8 µs and a tool call asks for the same few URLs again and
    again (its base URL, its builds); ``httpx.URL`` is immutable, so one is shared."""
    return _parsed(url)


# Bounded: the URLs of the tools and builds in use. An evicted one is parsed again.
_URL_CACHE = 4096


@functools.lru_cache(maxsize=_URL_CACHE)
def _parsed(url: str) -> httpx.URL:
    return httpx.URL(url)


@functools.lru_cache(maxsize=_URL_CACHE)
def _joined(base: str, path: str) -> httpx.URL:
    root = _parsed(base)
    return root.copy_with(
        userinfo=b"",
        raw_path=(root.raw_path.split(b"?", 1)[0].rstrip(b"/") + b"/" + path.lstrip("/").encode()),
        fragment=None,
    )


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP-date, RFC 9110),
    clamped to ``MAX_RETRY_AFTER_S``."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # An HTTP-date is always GMT; a date without a zone must not be read as local time.
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER_S)


# Rate-limit reset headers, as GitLab (RateLimit-Reset), GitHub (X-RateLimit-Reset) and
# the IETF draft (RateLimit-Reset) send them: seconds to wait, or a Unix time.
_RESET_HEADERS = ("ratelimit-reset", "x-ratelimit-reset")
# A reset value this large is a Unix time, not a number of seconds (2001-09-09).
_EPOCH_THRESHOLD = 1_000_000_000


def rate_limit_wait(response: httpx.Response) -> float | None:
    """Seconds to wait before asking again: ``Retry-After`` when sent, else a rate-limit
    reset header (delta seconds or a Unix time), clamped to ``MAX_RETRY_AFTER_S``."""
    waited = retry_after(response)
    if waited is not None:
        return waited
    for name in _RESET_HEADERS:
        value = response.headers.get(name, "").strip()
        if not re.fullmatch(r"\d+(\.\d+)?", value):
            continue
        seconds = float(value)
        if seconds >= _EPOCH_THRESHOLD:
            seconds = max(0.0, seconds - time.time())
        return min(seconds, MAX_RETRY_AFTER_S)
    return None


def _encodings(secret: str) -> set[str]:
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote(secret)}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms |= {text, text.rstrip("=")}
    return {form for form in forms if form}


class Redactor:
    """Cuts known secret values, and header-shaped credentials, out of upstream text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._added: list[str] = []
        for secret in secrets:
            self.add(secret)

    @classmethod
    def of(cls, credentials: Credentials | None) -> Redactor:
        """A redactor for the credentials a call uses (stored or the caller's own)."""
        if credentials is None:
            return cls()
        secrets = [credentials.token, credentials.password, credentials.api_key]
        if credentials.username is not None and credentials.password is not None:
            secrets.append(f"{credentials.username}:{credentials.password}")
        return cls(secret for secret in secrets if secret)

    def add(self, secret: str) -> None:
        """Redact ``secret`` too (e.g. a session cookie). Bounded: the oldest go first."""
        if not secret or secret in self._added:
            return
        self._added.append(secret)
        del self._added[:-_MAX_SECRETS]
        self._forms = set().union(*(_encodings(s) for s in self._added))
        # Longest first, so a secret's base64 goes whole, not around a shorter match.
        ordered = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(form) for form in ordered))

    def redact(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        return _AUTH_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)

    def excerpt(self, text: str, *, status: int) -> str:
        """What of an upstream's error text may be shown: nothing for 401/403/407, else
        the text on one line, redacted, at most ``EXCERPT_CHARS`` long."""
        if status in _SILENT_STATUSES:
            return ""
        return _clip(self.redact(" ".join(text.split())))

    def scrub(self, error: DevMeshError) -> None:
        """Redact an error's message and details in place, before anyone shows them."""
        error.message = self.redact(error.message)
        error.args = (error.message, *error.args[1:])
        error.details = {key: self._scrubbed(value) for key, value in error.details.items()}

    def _scrubbed(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self._scrubbed(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrubbed(item) for item in value]
        return value


def _clip(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
