import base64
import stat
from pathlib import Path

import pytest

from devmesh.config import ConfigError
from devmesh.security.keyfile import KEY_FILE_NAME, load_master_key


def test_without_a_configured_key_one_is_created_private_and_reused(tmp_path: Path) -> None:
    first = load_master_key(None, data_dir=tmp_path)
    mode = stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode)
    assert mode == 0o600
    assert load_master_key(None, data_dir=tmp_path) == first
    assert len(first) == 32


def test_a_configured_key_wins_over_the_file(tmp_path: Path) -> None:
    configured = base64.b64encode(b"k" * 32).decode()
    assert load_master_key(configured, data_dir=tmp_path) == b"k" * 32
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_a_configured_key_of_the_wrong_size_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="encryption_key: must decode to 32 bytes"):
        load_master_key(base64.b64encode(b"short").decode(), data_dir=tmp_path)


def test_a_configured_key_that_is_not_base64_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="encryption_key: not valid base64"):
        load_master_key("not base64!", data_dir=tmp_path)
