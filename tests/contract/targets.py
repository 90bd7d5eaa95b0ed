"""Every provider under contract; a new provider adds its target here."""

from __future__ import annotations

from tests.contract.buildbot import BUILDBOT
from tests.contract.circleci import CIRCLECI
from tests.contract.codebuild import CODEBUILD
from tests.contract.github_actions import GITHUB_ACTIONS
from tests.contract.gitlab import GITLAB
from tests.contract.jenkins import JENKINS
from tests.contract.target import ProviderTarget

__all__ = ["TARGETS"]

TARGETS: tuple[ProviderTarget, ...] = (
    BUILDBOT,
    GITLAB,
    JENKINS,
    GITHUB_ACTIONS,
    CIRCLECI,
    CODEBUILD,
)
