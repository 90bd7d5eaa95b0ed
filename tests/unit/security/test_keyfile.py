import base64
import multiprocessing
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devmesh.config import ConfigError
from devmesh.security.keyfile import KEY_FILE_NAME, load_master_key

_FORK = multiprocessing.get_context("fork")


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


def _load_at(data_dir: str, start: Any) -> bytes:
    start.wait()
    return load_master_key(None, data_dir=Path(data_dir))


def test_processes_creating_the_key_at_once_all_read_one_whole_key(tmp_path: Path) -> None:
    # serve's children (or replicas on one volume) start together on a fresh data dir.
    for attempt in range(5):
        data_dir = tmp_path / str(attempt)
        with multiprocessing.Manager() as manager:
            start = manager.Event()
            with ProcessPoolExecutor(max_workers=4, mp_context=_FORK) as pool:
                keys = [pool.submit(_load_at, str(data_dir), start) for _ in range(4)]
                start.set()
                loaded = {future.result(timeout=30) for future in keys}
        assert loaded == {load_master_key(None, data_dir=data_dir)}
        assert [p.name for p in data_dir.iterdir()] == [KEY_FILE_NAME]
