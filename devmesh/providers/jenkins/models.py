"""Jenkins tool configuration, and the parts of Jenkins' remote API JSON this provider reads.

The wire models follow what ``…/api/json`` serialises for the core classes
(``hudson.model.FreeStyleProject``, ``FreeStyleBuild``, ``Queue$WaitingItem``,
``Queue$LeftItem``; Pipeline's ``WorkflowJob``/``WorkflowRun`` look the same) and
ignore fields they do not name. Requests ask for only these fields with ``tree=``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "JenkinsConfig",
    "WireArtifact",
    "WireBuild",
    "WireBuildRef",
    "WireJob",
    "WireParameterDefinition",
    "WireQueueItem",
]


class JenkinsConfig(BaseModel):
    """Settings of one Jenkins tool instance; every one is optional."""

    model_config = ConfigDict(extra="forbid")

    request_timeout: float = Field(
        default=30.0, gt=0, le=300, description="Seconds to wait for one Jenkins request."
    )
    max_log_lines: int = Field(
        default=50_000,
        ge=100,
        le=1_000_000,
        description="Most log lines read for one build; beyond it the end of the log is kept.",
    )
    max_log_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        le=64 * 1024 * 1024,
        description="Most bytes read of one build's console text; beyond it the end is kept.",
    )
    unstable_is: Literal["failed", "succeeded"] = Field(
        default="failed",
        description="What an UNSTABLE build (it ran, but tests or quality gates failed) "
        "counts as; failed by default, since something an agent should look at went wrong.",
    )


class _Wire(BaseModel):
    # Fields keep Jenkins' camelCase names (fullName, queueId), as its JSON has them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireBuildRef(_Wire):
    """A build as a job's ``builds`` or a queue item's ``executable`` names it."""

    number: int
    url: str | None = None


class WireParameterDefinition(_Wire):
    name: str
    type: str | None = None


class WireJob(_Wire):
    """A job (freestyle, Pipeline) or a folder (which has ``jobs`` and no builds)."""

    name: str
    fullName: str | None = None
    url: str | None = None
    buildable: bool | None = None
    jobs: list[dict[str, Any]] | None = None
    # ``property`` on the wire; renamed so the name does not hide the builtin here.
    properties: list[dict[str, Any]] = Field(default_factory=list, alias="property")

    @property
    def is_folder(self) -> bool:
        return self.jobs is not None

    def parameters(self) -> list[WireParameterDefinition]:
        """The job's parameter definitions (``ParametersDefinitionProperty``)."""
        found: list[WireParameterDefinition] = []
        for prop in self.properties:
            for definition in prop.get("parameterDefinitions") or []:
                if isinstance(definition, dict) and isinstance(definition.get("name"), str):
                    found.append(WireParameterDefinition.model_validate(definition))
        return found


class WireArtifact(_Wire):
    fileName: str
    relativePath: str
    displayPath: str | None = None


class WireBuild(_Wire):
    number: int
    url: str | None = None
    building: bool = False
    result: str | None = None
    timestamp: int | None = None  # ms since the epoch, when it started
    duration: int | None = None  # ms, once finished
    queueId: int | None = None
    description: str | None = None
    actions: list[dict[str, Any] | None] = Field(default_factory=list)
    artifacts: list[WireArtifact] = Field(default_factory=list)

    def parameters(self) -> dict[str, Any]:
        """The values it ran with (``ParametersAction``), as ``buildWithParameters`` takes them."""
        values: dict[str, Any] = {}
        for action in self.actions:
            for parameter in (action or {}).get("parameters") or []:
                if isinstance(parameter, dict) and isinstance(parameter.get("name"), str):
                    values[parameter["name"]] = parameter.get("value")
        return values

    def causes(self) -> list[str]:
        """Why it ran, and why it was interrupted (``CauseAction``, ``InterruptedBuildAction``)."""
        said: list[str] = []
        for action in self.actions:
            for cause in (action or {}).get("causes") or []:
                text = cause.get("shortDescription") if isinstance(cause, dict) else None
                if isinstance(text, str) and text not in said:
                    said.append(text)
        return said

    def revision(self) -> tuple[str | None, str | None]:
        """Branch and commit from the Git plugin's ``BuildData``, when it ran from Git."""
        for action in self.actions:
            revision = (action or {}).get("lastBuiltRevision")
            if isinstance(revision, dict):
                branches = revision.get("branch") or [{}]
                branch = branches[0].get("name") if isinstance(branches[0], dict) else None
                return branch, revision.get("SHA1")
        return None, None


class WireQueueItem(_Wire):
    """``/queue/item/N/api/json``: waiting (``why``) or left (``executable`` or ``cancelled``)."""

    id: int
    why: str | None = None
    cancelled: bool | None = None
    executable: WireBuildRef | None = None
    task: dict[str, Any] | None = None
    inQueueSince: int | None = None

    @property
    def left(self) -> bool:
        return self.executable is not None or bool(self.cancelled)
