"""A real Buildbot master and worker on loopback, for integration tests.

`run_buildbot()` creates a master (from `master.cfg` next to this file) and a worker in a
scratch directory, starts both as foreground child processes of the test process
(`buildbot start --nodaemon`, `buildbot-worker start --nodaemon`), waits until the worker is
connected according to the REST API (`GET /api/v2/workers`), yields the URLs and PIDs, and on
exit stops both (worker first: SIGTERM, then SIGKILL after a timeout) together with any command
the worker was still running.

Both listen on 127.0.0.1 only, on free ports picked at start. The master gets builders
`runtests` (force scheduler `force`, properties `fail`/`sleep`), `lint` (`force-lint`) and
`package` (a long non-ASCII log, a published URL and two build data blobs), and a force
scheduler `release` that starts `package` and `runtests` together (see master.cfg).

Why the worker's environment is minimal: every step log of a Buildbot build starts with header
lines listing the worker's *whole* environment. Started with the test process's environment,
any host variable (API tokens, cloud credentials, CI secrets) would end up in build logs, and
from there in test output and snapshots. The worker therefore gets exactly
`PATH=/usr/bin:/bin`, `HOME=<scratch>` and `LANG=C.UTF-8`. The venv's bin directory is not
needed on PATH: the `buildbot-worker` script's shebang is the venv's Python by absolute path,
and `start --nodaemon` runs twistd inside that same process (no re-exec through PATH); the build
steps only call `bash`, `echo` and `sleep` from /usr/bin and /bin. The master gets an equally
minimal environment plus its `BB_*` settings, so nothing of the host reaches it either.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

MASTER_CFG = Path(__file__).with_name("master.cfg")
WORKER_NAME = "w1"

_STARTUP_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_POLL_INTERVAL_S = 0.1


@dataclass(frozen=True)
class BuildbotServer:
    """A running master + worker. `timings` (seconds) gains `teardown` once stopped."""

    base_url: str
    api_url: str
    master_pid: int
    worker_pid: int
    master_dir: Path
    worker_dir: Path
    worker_name: str = WORKER_NAME
    auth: tuple[str, str] | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _free_loopback_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all sockets held open until all are picked)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _minimal_env(home: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"--- {path}: unreadable ({exc}) ---"
    return f"--- tail of {path} ---\n" + "\n".join(text.splitlines()[-lines:])


def _diagnostics(master_dir: Path, worker_dir: Path) -> str:
    return "\n".join(
        _tail(p)
        for p in (
            master_dir / "twistd.log",
            master_dir / "console.log",
            worker_dir / "twistd.log",
            worker_dir / "console.log",
        )
        if p.exists()
    )


def _run_checked(argv: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed with exit code {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )


def _get_json(url: str, timeout: float = 2.0) -> Any:
    # No proxy handler: loopback traffic must never go through a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def _proc_start_time(pid: int) -> int | None:
    """Kernel start time of a process (to detect PID reuse), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; it ends at the last ')'.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _descendants(roots: list[int]) -> list[tuple[int, int]]:
    """(pid, start time) of every live descendant of `roots`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[tuple[int, int]] = []
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            start = _proc_start_time(child)
            if start is not None:
                found.append((child, start))
                todo.append(child)
    return found


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=_STOP_TIMEOUT_S)


def _wait_until_connected(
    api_url: str,
    procs: dict[str, subprocess.Popen[bytes]],
    deadline: float,
    need_worker: bool,
    diagnostics: Any,
) -> None:
    """Poll `GET /workers` until it answers (and, if need_worker, shows a connected worker)."""
    last_error = "no answer yet"
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"buildbot {name} exited early with code {proc.returncode}\n{diagnostics()}"
                )
        try:
            workers = _get_json(f"{api_url}/workers")["workers"]
            if not need_worker:
                return
            if any(w["name"] == WORKER_NAME and w["connected_to"] for w in workers):
                return
            last_error = f"worker not connected yet: {workers!r}"
        except (OSError, ValueError, KeyError) as exc:  # URLError is an OSError
            last_error = repr(exc)
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"buildbot did not become ready in {_STARTUP_TIMEOUT_S:.0f} s "
                f"({last_error})\n{diagnostics()}"
            )
        time.sleep(_POLL_INTERVAL_S)


@contextlib.contextmanager
def run_buildbot(
    tmp_dir: Path,
    *,
    hook_url: str | None = None,
    hook_password: str | None = None,
    auth: tuple[str, str] | None = None,
) -> Iterator[BuildbotServer]:
    """Start a Buildbot master + connected worker under `tmp_dir`; stop both on exit.

    `hook_url`: HttpStatusPush target (one JSON POST of the build dict per state change).
    `hook_password`: sent with it as basic auth (user `devmesh`), the webhook secret.
    `auth`: (user, password); then control endpoints need a login as that user
    (`GET /auth/login` with basic auth sets the session cookie).
    """
    t0 = time.monotonic()
    bin_dir = Path(sys.executable).parent
    buildbot_exe = bin_dir / "buildbot"
    worker_exe = bin_dir / "buildbot-worker"
    for exe in (buildbot_exe, worker_exe):
        if not exe.exists():
            raise RuntimeError(f"{exe.name} not found next to {sys.executable}")

    tmp_dir.mkdir(parents=True, exist_ok=True)
    master_dir = tmp_dir / "master"
    worker_dir = tmp_dir / "worker"
    master_home = tmp_dir / "master-home"
    worker_home = tmp_dir / "worker-home"
    for home in (master_home, worker_home):
        home.mkdir(exist_ok=True)

    www_port, pb_port = _free_loopback_ports(2)
    worker_password = secrets.token_hex(16)
    base_url = f"http://127.0.0.1:{www_port}"
    api_url = f"{base_url}/api/v2"

    master_settings = {
        "BB_WWW_PORT": str(www_port),
        "BB_PB_PORT": str(pb_port),
        "BB_WORKER_NAME": WORKER_NAME,
        "BB_WORKER_PASSWORD": worker_password,
    }
    if hook_url:
        master_settings["BB_HOOK_URL"] = hook_url
    if hook_password:
        master_settings["BB_HOOK_PASSWORD"] = hook_password
    if auth is not None:
        master_settings["BB_AUTH_USER"], master_settings["BB_AUTH_PASSWORD"] = auth
    master_env = _minimal_env(master_home, **master_settings)
    worker_env = _minimal_env(worker_home)

    _run_checked(
        [str(buildbot_exe), "create-master", "-r", str(master_dir)], master_env, "create-master"
    )
    shutil.copyfile(MASTER_CFG, master_dir / "master.cfg")
    _run_checked(
        [
            str(worker_exe),
            "create-worker",
            str(worker_dir),
            f"127.0.0.1:{pb_port}",
            WORKER_NAME,
            worker_password,
        ],
        worker_env,
        "create-worker",
    )
    t_created = time.monotonic()

    def diagnostics() -> str:
        return _diagnostics(master_dir, worker_dir)

    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: list[IO[bytes]] = []
    timings: dict[str, float] = {}
    try:
        master_log = open(master_dir / "console.log", "wb")  # noqa: SIM115 (closed in finally)
        logs.append(master_log)
        procs["master"] = subprocess.Popen(
            [str(buildbot_exe), "start", "--nodaemon", str(master_dir)],
            cwd=master_dir,
            env=master_env,
            stdin=subprocess.DEVNULL,
            stdout=master_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = t0 + _STARTUP_TIMEOUT_S
        # Start the worker only once the master answers: a worker that finds no master backs
        # off for seconds before it retries.
        _wait_until_connected(api_url, procs, deadline, need_worker=False, diagnostics=diagnostics)
        worker_log = open(worker_dir / "console.log", "wb")  # noqa: SIM115 (closed in finally)
        logs.append(worker_log)
        procs["worker"] = subprocess.Popen(
            [str(worker_exe), "start", "--nodaemon", str(worker_dir)],
            cwd=worker_dir,
            env=worker_env,
            stdin=subprocess.DEVNULL,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_until_connected(api_url, procs, deadline, need_worker=True, diagnostics=diagnostics)
        t_ready = time.monotonic()
        timings.update(
            create=t_created - t0, start_connected=t_ready - t_created, total_up=t_ready - t0
        )
        yield BuildbotServer(
            base_url=base_url,
            api_url=api_url,
            master_pid=procs["master"].pid,
            worker_pid=procs["worker"].pid,
            master_dir=master_dir,
            worker_dir=worker_dir,
            auth=auth,
            timings=timings,
        )
    finally:
        t_stop = time.monotonic()
        # Remember what the worker (and master) spawned: build commands run in their own
        # process groups and would outlive a killed worker as orphans.
        descendants = _descendants([p.pid for p in procs.values() if p.poll() is None])
        for name in ("worker", "master"):
            if name in procs:
                _stop(procs[name])
        for pid, start in descendants:
            if _proc_start_time(pid) == start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for log in logs:
            log.close()
        timings["teardown"] = time.monotonic() - t_stop
