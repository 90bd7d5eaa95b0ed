"""Buildbot: builds, pipelines (force schedulers) and artifacts over its REST API.

A project is a builder name. Only the master's base URL is needed: the adapter finds
the force scheduler that serves each builder. See ``adapter`` for the id schemes.
"""

from __future__ import annotations

from devmesh.adapters.operations import ARTIFACT_OPERATIONS, CI_OPERATIONS, PIPELINE_OPERATIONS
from devmesh.adapters.registry import Provider
from devmesh.providers.buildbot.adapter import BuildbotAdapter
from devmesh.providers.buildbot.models import BuildbotConfig
from devmesh.providers.buildbot.session import CREDENTIALS
from devmesh.providers.buildbot.webhooks import (
    BuildbotWebhookNormaliser,
    BuildbotWebhookVerifier,
    build_subject,
)

__all__ = ["BuildbotAdapter", "BuildbotConfig", "provider"]


provider = Provider(
    name="buildbot",
    title="Buildbot",
    description=(
        "Trigger, watch, cancel and retry Buildbot builds and read their logs. A project is "
        "a builder name; parameters are the force scheduler's fields (e.g. properties). "
        "trigger_build returns a 'br-<n>' id for the build request, usable at once; "
        "started builds have numeric ids. A pipeline is a force scheduler: trigger_pipeline "
        "starts all its builders as one run ('bs-<n>'). A build's artifacts are its build "
        "data, its step logs and the links its steps published."
    ),
    create_adapter=BuildbotAdapter,
    operations=(*CI_OPERATIONS, *PIPELINE_OPERATIONS, *ARTIFACT_OPERATIONS),
    config_model=BuildbotConfig,
    credentials=CREDENTIALS,
    docs_url="https://docs.buildbot.net/latest/developer/rest.html",
    webhook_verifier=BuildbotWebhookVerifier(),
    webhook_normaliser=BuildbotWebhookNormaliser(),
    build_subject=build_subject,
)
