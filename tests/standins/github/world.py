"""The stand-in's state: tokens, apps, repositories with scripted workflows, and runs
whose jobs move through their states on the wall clock.

A workflow's script lists its jobs; they run one after another (as ``needs`` chains
them), each queued for ``queued_s`` and running for ``duration_s``; a job that
``fails`` ends ``failure`` and the jobs after it are ``skipped``. Cancelling ends what
has not finished as ``cancelled``. A re-run is a new attempt of the same run: all jobs
again, or (failed jobs only) the failed and skipped ones again while the others keep
their outcome, as GitHub does.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Attempt", "Job", "JobState", "Repo", "Run", "World"]


@dataclass
class Job:
    """One job of a script."""

    name: str
    queued_s: float = 0.05
    duration_s: float = 0.1
    fails: bool = False
    lines: list[str] = field(default_factory=list)
    # Artifacts this job uploads: name -> {path in the zip: text}.
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class JobState:
    """A job of one attempt: its id and, once known, its times and conclusion."""

    id: int
    job: Job
    kept: JobState | None = None  # a failed-jobs re-run keeps this earlier outcome


@dataclass
class Attempt:
    number: int
    started: float
    jobs: list[JobState]
    cancelled_at: float | None = None


@dataclass
class Run:
    id: int
    repo: str
    workflow: str  # file name
    workflow_id: int
    ref: str
    event: str
    number: int
    inputs: dict[str, Any]
    created: float
    attempts: list[Attempt] = field(default_factory=list)


@dataclass
class Repo:
    full_name: str
    id: int
    default_branch: str = "main"
    branches: tuple[str, ...] = ("main",)
    # workflow file name -> (workflow id, its jobs)
    workflows: dict[str, tuple[int, list[Job]]] = field(default_factory=dict)


@dataclass
class Timeline:
    status: str  # queued | in_progress | completed
    conclusion: str | None
    started: float | None
    completed: float | None


class World:
    def __init__(self) -> None:
        self.ids = itertools.count(1000)
        self.tokens: set[str] = set()
        self.apps: dict[int, tuple[str, bytes]] = {}  # installation -> (app id, public PEM)
        self.repos: dict[str, Repo] = {}
        self.runs: dict[int, Run] = {}
        self.jobs: dict[int, tuple[Run, Attempt, JobState]] = {}
        self.artifacts: dict[int, tuple[Run, str, dict[str, str], float]] = {}
        self.legacy_dispatch = False  # answer dispatches 204, as older GHES does
        self.numbers: dict[str, int] = {}

    def now(self) -> float:
        return time.time()

    def add_repo(self, full_name: str, workflows: dict[str, list[dict[str, Any]]]) -> Repo:
        repo = Repo(full_name=full_name, id=next(self.ids))
        for file, jobs in workflows.items():
            repo.workflows[file] = (next(self.ids), [Job(**job) for job in jobs])
        self.repos[full_name] = repo
        return repo

    def dispatch(self, repo: Repo, file: str, ref: str, inputs: dict[str, Any]) -> Run:
        workflow_id, jobs = repo.workflows[file]
        self.numbers[repo.full_name] = self.numbers.get(repo.full_name, 0) + 1
        now = self.now()
        run = Run(
            id=next(self.ids), repo=repo.full_name, workflow=file, workflow_id=workflow_id,
            ref=ref, event="workflow_dispatch", number=self.numbers[repo.full_name],
            inputs=inputs, created=now,
        )  # fmt: skip
        self.runs[run.id] = run
        self._attempt(run, [JobState(next(self.ids), job) for job in jobs], now)
        return run

    def _attempt(self, run: Run, states: list[JobState], now: float) -> Attempt:
        attempt = Attempt(number=len(run.attempts) + 1, started=now, jobs=states)
        run.attempts.append(attempt)
        for state in states:
            self.jobs[state.id] = (run, attempt, state)
        return attempt

    def rerun(self, run: Run, *, failed_only: bool) -> None:
        last = run.attempts[-1]
        states = []
        for state in last.jobs:
            outcome = self.timeline(last, state)
            keep = failed_only and outcome.conclusion == "success"
            states.append(JobState(next(self.ids), state.job, kept=state if keep else None))
        self._attempt(run, states, self.now())

    def cancel(self, run: Run) -> None:
        run.attempts[-1].cancelled_at = self.now()

    def timeline(self, attempt: Attempt, target: JobState) -> Timeline:
        """Where ``target`` stands now: jobs run one after another within the attempt."""
        now = self.now()
        at = attempt.started
        failed = False
        for state in attempt.jobs:
            if state.kept is not None:
                kept = self._kept(state.kept)
                if state is target:
                    return kept
                continue
            start = at + state.job.queued_s
            end = start + state.job.duration_s
            cut = attempt.cancelled_at
            if failed:
                line = Timeline("completed", "skipped", end, end)
                if cut is not None and cut < end:
                    line = Timeline("completed", "cancelled", min(start, cut), cut)
            elif cut is not None and cut < end:
                line = Timeline("completed", "cancelled", min(start, cut), cut)
            elif now < start:
                line = Timeline("queued", None, None, None)
            elif now < end:
                line = Timeline("in_progress", None, start, None)
            else:
                line = Timeline(
                    "completed", "failure" if state.job.fails else "success", start, end
                )
            if state is target:
                return line
            if line.conclusion == "failure":
                failed = True
            at = end
        raise KeyError(target.id)

    def _kept(self, state: JobState) -> Timeline:
        run, attempt, _ = self.jobs[state.id]
        del run
        return self.timeline(attempt, state)

    def run_timeline(self, attempt: Attempt) -> Timeline:
        lines = [self.timeline(attempt, state) for state in attempt.jobs]
        starts = [line.started for line in lines if line.started is not None]
        if all(line.status == "completed" for line in lines):
            conclusions = {line.conclusion for line in lines}
            conclusion = next((c for c in ("failure", "cancelled") if c in conclusions), "success")
            ends = [line.completed or 0.0 for line in lines]
            return Timeline("completed", conclusion, min(starts, default=None), max(ends))
        if starts:
            return Timeline("in_progress", None, min(starts), None)
        return Timeline("queued", None, None, None)

    def uploads(self, run: Run) -> None:
        """Artifacts appear once the job that uploads them has succeeded."""
        known = {(r.id, name) for r, name, _, _ in self.artifacts.values()}
        for attempt in run.attempts:
            for state in attempt.jobs:
                line = self.timeline(attempt, state)
                if line.conclusion != "success":
                    continue
                for name, files in state.job.artifacts.items():
                    if (run.id, name) not in known:
                        self.artifacts[next(self.ids)] = (run, name, files, line.completed or 0.0)
                        known.add((run.id, name))
