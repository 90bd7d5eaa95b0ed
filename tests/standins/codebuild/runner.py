"""CodeBuild's build fleet, for moto: running builds, stopping them, retrying them.

Installed into moto's CodeBuild backend and responses by ``install()``, in the
stand-in's process. Phases follow the CodeBuild user guide ("Build phase
transitions"): SUBMITTED, QUEUED, PROVISIONING, DOWNLOAD_SOURCE, INSTALL, PRE_BUILD,
BUILD, POST_BUILD, UPLOAD_ARTIFACTS, FINALIZING, COMPLETED. A failing command fails its
phase (``COMMAND_EXECUTION_ERROR``) and the build (FAILED); after a failed BUILD,
POST_BUILD still runs, as CodeBuild does. ``StopBuild`` ends the running command and
the build is STOPPED.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from moto.codebuild import models as codebuild_models
from moto.codebuild import responses as codebuild_responses
from moto.codebuild.exceptions import InvalidInputException, ResourceNotFoundException
from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.logs.exceptions import ResourceAlreadyExistsException
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends

__all__ = ["install"]

_COMMAND_PHASES = ("INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD")
_STEP_TIMEOUT_S = 300
_stops: dict[str, threading.Event] = {}
_processes: dict[str, subprocess.Popen[bytes]] = {}


def _now() -> str:
    return iso_8601_datetime_with_milliseconds()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%S.%f")


class _Run:
    def __init__(self, backend: Any, build: dict[str, Any], project: Any) -> None:
        self.backend = backend
        self.build = build
        self.project = project
        self.group = f"/aws/codebuild/{build['projectName']}"
        self.stream = build["id"].split(":", 1)[1]
        self.stop = _stops.setdefault(build["id"], threading.Event())
        self.logs = logs_backends[backend.account_id][backend.region_name]

    def log(self, *lines: str) -> None:
        millis = int(time.time() * 1000)
        self.logs.put_log_events(
            self.group,
            self.stream,
            [{"timestamp": millis, "message": line} for line in lines],
        )

    def phase(self, name: str, status: str, **fields: Any) -> None:
        now = _now()
        phases = self.build["phases"]
        if phases and "phaseStatus" not in phases[-1]:
            phases[-1].update(phaseStatus="SUCCEEDED", endTime=now, durationInSeconds=0)
        phases.append({"phaseType": name, "startTime": now, **fields})
        if status:
            phases[-1].update(phaseStatus=status, endTime=now, durationInSeconds=0)
        self.build["currentPhase"] = name

    def command(self, command: str, env: dict[str, str], cwd: str) -> int:
        self.log(f"[Container] {_stamp()} Running command {command}")
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _processes[self.build["id"]] = process
        assert process.stdout is not None
        for raw in process.stdout:
            self.log(raw.decode("utf-8", "replace").rstrip("\n"))
        code = process.wait(timeout=_STEP_TIMEOUT_S)
        _processes.pop(self.build["id"], None)
        return code

    def run(self) -> None:
        spec = yaml.safe_load(self.project.project_metadata["source"].get("buildspec") or "")
        spec = spec if isinstance(spec, dict) else {}
        variables = {
            str(v["name"]): str(v.get("value", ""))
            for v in self.build["environment"].get("environmentVariables") or []
        }
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **(spec.get("env") or {}).get("variables", {}),
            **variables,
        }
        env["CODEBUILD_BUILD_ID"] = self.build["id"]
        # One group per project: it exists already from the project's earlier builds.
        with contextlib.suppress(ResourceAlreadyExistsException):
            self.logs.create_log_group(self.group, {})
        self.logs.create_log_stream(self.group, self.stream)
        self.build["logs"].update(
            groupName=self.group,
            streamName=self.stream,
            deepLink=f"https://console.aws.amazon.com/cloudwatch/home#logEvent:group={self.group};stream={self.stream}",
        )
        outcome = "SUCCEEDED"
        with tempfile.TemporaryDirectory(prefix="codebuild-") as work:
            for name in ("PROVISIONING", "DOWNLOAD_SOURCE", *_COMMAND_PHASES):
                # After a failure only POST_BUILD runs, and only after a failed BUILD.
                after_build = (
                    name == "POST_BUILD" and self.build["phases"][-1]["phaseType"] == "BUILD"
                )
                if outcome == "STOPPED" or (outcome == "FAILED" and not after_build):
                    continue
                self.phase(name, "")
                self.log(f"[Container] {_stamp()} Entering phase {name}")
                commands = ((spec.get("phases") or {}).get(name.lower()) or {}).get("commands")
                ended = self.commands([str(c) for c in commands or []], env, work)
                self.log(f"[Container] {_stamp()} Phase complete: {name} State: {ended}")
                outcome = ended if outcome == "SUCCEEDED" else outcome
            if outcome == "SUCCEEDED":
                self.phase("UPLOAD_ARTIFACTS", "")
                self.upload(spec, work)
        self.phase("FINALIZING", "")
        self.phase("COMPLETED", "")
        self.build["phases"][-1].pop("phaseStatus", None)
        self.build["buildStatus"] = outcome
        self.build["endTime"] = _now()
        self.build["buildComplete"] = True

    def commands(self, commands: list[str], env: dict[str, str], work: str) -> str:
        """Run a phase's commands: SUCCEEDED, FAILED (at the first failing one) or STOPPED."""
        for command in commands:
            code = self.command(command, env, work)
            if self.stop.is_set():
                self.build["phases"][-1].update(phaseStatus="STOPPED", endTime=_now())
                return "STOPPED"
            if code != 0:
                reason = f"exit status {code}"
                self.log(
                    f"[Container] {_stamp()} Command did not exit successfully {command} {reason}"
                )
                message = f"Error while executing command: {command}. Reason: {reason}"
                self.build["phases"][-1].update(
                    phaseStatus="FAILED",
                    endTime=_now(),
                    contexts=[{"statusCode": "COMMAND_EXECUTION_ERROR", "message": message}],
                )
                return "FAILED"
        return "SUCCEEDED"

    def upload(self, spec: dict[str, Any], work: str) -> None:
        wanted = (spec.get("artifacts") or {}).get("files") or []
        target = self.project.project_metadata.get("artifacts") or {}
        bucket = target.get("location")
        if not wanted or target.get("type") != "S3" or not bucket:
            return
        prefix = f"{self.stream}/{target.get('name') or 'artifacts'}"
        s3 = s3_backends[self.backend.account_id]["global"]
        for pattern in wanted:
            for path in glob.glob(str(Path(work) / pattern), recursive=True):
                if Path(path).is_file():
                    key = f"{prefix}/{Path(path).relative_to(work)}"
                    s3.put_object(bucket, key, Path(path).read_bytes())
        self.build["artifacts"] = {"location": f"arn:aws:s3:::{bucket}/{prefix}"}


def _start(backend: Any, build: dict[str, Any]) -> None:
    project = backend.codebuild_projects[build["projectName"]]
    run = _Run(backend, build, project)

    def safely() -> None:
        try:
            run.run()
        except Exception as exc:  # a runner bug is the build's FAULT, as CodeBuild's own
            build.update(
                buildStatus="FAULT", endTime=_now(), buildComplete=True, currentPhase="COMPLETED"
            )
            build["phases"].append(
                {
                    "phaseType": "FINALIZING",
                    "phaseStatus": "FAULT",
                    "contexts": [{"statusCode": "RUNNER", "message": repr(exc)}],
                }
            )

    threading.Thread(target=safely, daemon=True).start()


def _started(
    backend: Any, project: str, source_version: str | None, variables: list[dict[str, Any]]
) -> dict[str, Any]:
    build: dict[str, Any] = backend.start_build(project, source_version, None)
    build["environment"] = {**build["environment"], "environmentVariables": list(variables)}
    build["artifacts"] = {}
    build["logs"] = {"status": "ENABLED"}
    _start(backend, build)
    return build


def _find(backend: Any, build_id: str) -> dict[str, Any] | None:
    for builds in backend.build_metadata_history.values():
        for build in builds:
            if build["id"] == build_id:
                return build
    return None


def install() -> None:
    """Replace moto's pretend build lifecycle with the runner's, and add RetryBuild."""
    backend_class = codebuild_models.CodeBuildBackend
    response_class = codebuild_responses.CodeBuildResponse
    ActionResult = codebuild_responses.ActionResult

    def batch_get_builds(self: Any, ids: list[str]) -> list[dict[str, Any]]:
        return [b for b in (_find(self, i) for i in ids) if b is not None]

    def list_builds_for_project(self: Any, project_name: str) -> list[str]:
        return list(self.build_history.get(project_name, []))

    backend_class.batch_get_builds = batch_get_builds
    backend_class.list_builds_for_project = list_builds_for_project

    original_list = response_class.list_builds_for_project

    def listed(self: Any) -> Any:
        result = original_list(self)
        # ListBuildsForProject: sortOrder DESCENDING (newest first) unless ASCENDING.
        if self._get_param("sortOrder") != "ASCENDING":
            result = ActionResult(
                {
                    "ids": list(
                        reversed(
                            self.codebuild_backend.list_builds_for_project(
                                self._get_param("projectName")
                            )
                        )
                    )
                }
            )
        return result

    def start_build(self: Any) -> Any:
        name = self._get_param("projectName")
        if name not in self.codebuild_backend.codebuild_projects:
            raise ResourceNotFoundException(f"Project cannot be found: {name}")
        build = _started(
            self.codebuild_backend,
            name,
            self._get_param("sourceVersion"),
            self._get_param("environmentVariablesOverride") or [],
        )
        return ActionResult({"build": build})

    def stop_build(self: Any) -> Any:
        build = _find(self.codebuild_backend, self._get_param("id"))
        if build is None:
            raise ResourceNotFoundException(f"Build {self._get_param('id')} does not exist")
        if build.get("buildComplete"):
            raise InvalidInputException("Build is already completed")
        _stops.setdefault(build["id"], threading.Event()).set()
        process = _processes.get(build["id"])
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
        return ActionResult({"build": build})

    def retry_build(self: Any) -> Any:
        build = _find(self.codebuild_backend, self._get_param("id") or "")
        if build is None:
            raise ResourceNotFoundException(f"Build {self._get_param('id')} does not exist")
        if not build.get("buildComplete"):
            raise InvalidInputException("Only completed builds can be retried")
        again = _started(
            self.codebuild_backend,
            build["projectName"],
            build.get("sourceVersion"),
            build["environment"].get("environmentVariables") or [],
        )
        return ActionResult({"build": again})

    response_class.list_builds_for_project = listed
    response_class.start_build = start_build
    response_class.stop_build = stop_build
    response_class.retry_build = retry_build
