"""The master encryption key: from settings, or a key file the embedded default keeps.

The Go original used a throw-away random key when none was configured, so stored
credentials became unreadable after a restart. Here a missing key is created once,
written with mode 0600 in the data directory, and reused on every start.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

import structlog

from devmesh.config import ConfigError

__all__ = ["KEY_FILE_NAME", "load_master_key"]

KEY_FILE_NAME = "encryption.key"
_KEY_BYTES = 32
_log = structlog.get_logger(__name__)


def _decode(text: str, *, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{source}: not valid base64") from exc
    if len(key) != _KEY_BYTES:
        raise ConfigError(f"{source}: must decode to {_KEY_BYTES} bytes, got {len(key)}")
    return key


def load_master_key(configured: str | None, *, data_dir: Path) -> bytes:
    if configured is not None:
        return _decode(configured, source="encryption_key")
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        return _decode(path.read_text(encoding="ascii"), source=str(path))
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(_KEY_BYTES)
    # Written whole under a name of its own, then linked into place: link fails if the
    # name exists, so two processes starting at once (serve's children, replicas on
    # one volume) never each keep a different key, and none reads a half-written file.
    draft = data_dir / f".{KEY_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(key).decode() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            return _decode(path.read_text(encoding="ascii"), source=str(path))
    finally:
        draft.unlink(missing_ok=True)
    _log.warning(
        "encryption_key_created",
        path=str(path),
        hint="back this file up, or set DEVMESH_ENCRYPTION_KEY; credentials stored "
        "with it are unreadable without it",
    )
    return key
