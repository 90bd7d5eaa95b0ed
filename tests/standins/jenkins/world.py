"""The stand-in's state: jobs in folders, the queue, builds whose shell steps really run.

A queued build waits ``quiet_period_s`` (Jenkins' quiet period, "In the quiet period.
Expires in …"), then leaves the queue for an executor: it becomes build ``n`` of its
job and its steps run one after the other as ``bash -xe <script>`` in a fresh
workspace, stdout and stderr into the console, the first failing step ending the
build (FAILURE), as a freestyle job's "Execute shell" steps do. ``/stop`` kills the
running step's process group (ABORTED). Files matching the job's ``artifacts`` glob
are archived when the steps are done. A left queue item is remembered for
``left_ttl_s`` (Jenkins: five minutes), then its URL is 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Build", "Job", "QueueItem", "World"]


@dataclass
class Job:
    path: str  # full name, "team/app"
    steps: list[str]
    parameters: dict[str, str] = field(default_factory=dict)  # name -> default
    artifacts: str | None = None  # a glob in the workspace, "dist/*"
    builds: list[Build] = field(default_factory=list)
    next_number: int = 1

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Build:
    job: Job
    number: int
    queue_id: int
    parameters: dict[str, str]
    user: str
    started_ms: int
    console: bytearray = field(default_factory=bytearray)
    result: str | None = None
    duration_ms: int = 0
    artifacts: dict[str, bytes] = field(default_factory=dict)
    aborted_by: str | None = None
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None

    @property
    def building(self) -> bool:
        return self.result is None


@dataclass
class QueueItem:
    id: int
    job: Job
    parameters: dict[str, str]
    user: str
    since_ms: int
    build: Build | None = None
    cancelled: bool = False
    left_at: float | None = None


def _archived(workspace: Path, glob: str) -> dict[str, bytes]:
    return {
        str(path.relative_to(workspace)): path.read_bytes()
        for path in sorted(workspace.glob(glob))
        if path.is_file()
    }


def _ms() -> int:
    return int(time.time() * 1000)


class World:
    def __init__(self) -> None:
        self.root_url = ""
        self.reset()

    def reset(self, **settings: Any) -> None:
        for build in self.all_builds():
            if build.process is not None and build.result is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(build.process.pid, signal.SIGKILL)
        self.users: dict[str, str] = dict(settings.get("users") or {})
        self.crumbs: bool = bool(settings.get("crumbs", True))
        self.crumb_salt = 0
        self.quiet_period_s: float = float(settings.get("quiet_period_s", 0.2))
        self.left_ttl_s: float = float(settings.get("left_ttl_s", 300.0))
        self.notify_url: str | None = settings.get("notify_url")
        self.jobs: dict[str, Job] = {}
        self.queue: dict[int, QueueItem] = {}
        self.next_queue_id = 1
        self.deliveries: list[dict[str, Any]] = []
        # The plugin posts phase after phase; one at a time keeps them in that order.
        self._delivering = asyncio.Lock()

    def add_job(self, spec: dict[str, Any]) -> Job:
        job = Job(
            path=str(spec["path"]).strip("/"),
            steps=list(spec.get("steps") or []),
            parameters=dict(spec.get("parameters") or {}),
            artifacts=spec.get("artifacts"),
        )
        self.jobs[job.path] = job
        return job

    def folders(self) -> set[str]:
        found: set[str] = set()
        for path in self.jobs:
            parts = path.split("/")
            found.update("/".join(parts[:i]) for i in range(1, len(parts)))
        return found

    def all_builds(self) -> list[Build]:
        return [build for job in getattr(self, "jobs", {}).values() for build in job.builds]

    # --- the queue ---------------------------------------------------------------------

    def enqueue(self, job: Job, parameters: dict[str, str], user: str) -> QueueItem:
        item = QueueItem(self.next_queue_id, job, parameters, user, _ms())
        self.next_queue_id += 1
        self.queue[item.id] = item
        self.notify(job, "QUEUED", queue_id=item.id, parameters=parameters)
        asyncio.get_running_loop().call_later(self.quiet_period_s, self._leave, item)
        return item

    def item(self, queue_id: int) -> QueueItem | None:
        item = self.queue.get(queue_id)
        left = item.left_at if item is not None else None
        if left is not None and time.monotonic() - left > self.left_ttl_s:
            del self.queue[queue_id]
            return None
        return item

    def cancel(self, queue_id: int) -> None:
        item = self.queue.get(queue_id)
        if item is not None and item.left_at is None:
            item.cancelled, item.left_at = True, time.monotonic()

    def _leave(self, item: QueueItem) -> None:
        if item.left_at is not None:
            return  # cancelled meanwhile
        job = item.job
        build = Build(job, job.next_number, item.id, item.parameters, item.user, _ms())
        job.next_number += 1
        job.builds.append(build)
        item.build, item.left_at = build, time.monotonic()
        build.task = asyncio.get_running_loop().create_task(self._run(build))

    # --- running a build -----------------------------------------------------------------

    async def _run(self, build: Build) -> None:
        job = build.job
        say = build.console.extend
        say(f"Started by user {build.user}\n".encode())
        workspace = Path(tempfile.mkdtemp(prefix="jenkins-ws-"))
        say(f"Building in workspace {workspace}\n".encode())
        self.notify(job, "STARTED", build=build)
        result = "SUCCESS"
        env = {**os.environ, **build.parameters, "BUILD_NUMBER": str(build.number),
               "JOB_NAME": job.path, "WORKSPACE": str(workspace)}  # fmt: skip
        try:
            for index, step in enumerate(job.steps):
                script = workspace.parent / f"jenkins{build.queue_id}-{index}.sh"
                script.write_text(step + "\n")
                say(f"[{job.name}] $ /bin/bash -xe {script}\n".encode())
                build.process = await asyncio.create_subprocess_exec(
                    "bash", "-xe", str(script), cwd=workspace, env=env,
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
                assert build.process.stdout is not None
                while chunk := await build.process.stdout.read(4096):
                    say(chunk)
                code = await build.process.wait()
                script.unlink(missing_ok=True)
                if build.aborted_by is not None:
                    result = "ABORTED"
                    say(f"Build was aborted\nAborted by {build.aborted_by}\n".encode())
                    break
                if code != 0:
                    result = "FAILURE"
                    say(b"Build step 'Execute shell' marked build as failure\n")
                    break
            if result != "ABORTED" and job.artifacts:
                say(b"Archiving artifacts\n")
                build.artifacts.update(_archived(workspace, job.artifacts))
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        say(f"Finished: {result}\n".encode())
        build.duration_ms = max(1, _ms() - build.started_ms)
        build.result = result
        self.notify(job, "COMPLETED", build=build)
        self.notify(job, "FINALIZED", build=build)

    def stop(self, build: Build, user: str) -> None:
        if build.result is not None or build.aborted_by is not None:
            return
        build.aborted_by = user
        if build.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(build.process.pid, signal.SIGTERM)

    # --- the Notification plugin -----------------------------------------------------------

    def notify(
        self,
        job: Job,
        phase: str,
        *,
        build: Build | None = None,
        queue_id: int | None = None,
        parameters: dict[str, str] | None = None,
    ) -> None:
        if not self.notify_url:
            return
        url = "".join(f"job/{part}/" for part in job.path.split("/"))
        body: dict[str, Any] = {
            "name": job.name,
            "display_name": job.name,
            "url": url,
            "build": {
                "phase": phase,
                "queue_id": build.queue_id if build else queue_id,
                "parameters": build.parameters if build else (parameters or {}),
                "notes": "",
                "log": "",
                "artifacts": {},
            },
        }
        if build is not None:
            body["build"] |= {
                "full_url": f"{self.root_url}/{url}{build.number}/",
                "url": f"{url}{build.number}/",
                "number": build.number,
                "timestamp": build.started_ms,
                "duration": build.duration_ms,
            }
            if phase in ("COMPLETED", "FINALIZED"):
                body["build"]["status"] = build.result
        self.deliveries.append(body)
        asyncio.get_running_loop().create_task(self._deliver(self.notify_url, body))

    async def _deliver(self, url: str, body: dict[str, Any]) -> None:
        async with self._delivering:
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
                    await client.post(url, json=body)
