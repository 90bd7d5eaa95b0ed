"""How many processes `devmesh serve` runs, and which run the background work."""

from __future__ import annotations

import os

from devmesh.config import load_settings
from devmesh.supervisor import background_in, default_workers

PG = "postgresql+asyncpg://u:p@127.0.0.1/db"


def test_without_redis_serve_runs_one_process() -> None:
    assert default_workers(load_settings(environ={})) == 1


def test_with_redis_serve_runs_one_process_per_cpu_it_may_use() -> None:
    settings = load_settings(environ={"DEVMESH_REDIS_URL": "redis://127.0.0.1:6379"})
    assert default_workers(settings) == len(os.sched_getaffinity(0))


def test_serve_workers_setting_wins_over_the_default() -> None:
    assert default_workers(load_settings(environ={"DEVMESH_SERVE__WORKERS": "3"})) == 3


def test_on_sqlite_only_the_first_process_runs_the_background_work() -> None:
    settings = load_settings(environ={})
    assert [background_in(settings, index) for index in range(3)] == [True, False, False]


def test_on_postgresql_every_process_runs_the_background_work() -> None:
    settings = load_settings(environ={"DEVMESH_DATABASE_URL": PG})
    assert [background_in(settings, index) for index in range(3)] == [True, True, True]
