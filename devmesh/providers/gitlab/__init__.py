"""GitLab CI over the REST API v4: pipelines as builds, schedules as pipelines, job artifacts.

A project is a path (``group/app``) or numeric id; a build is a pipeline (id
``group/app#1234``), its steps are jobs in stages. Register a tool with a token only
for gitlab.com, or with ``base_url`` for a self-hosted GitLab.
"""

from __future__ import annotations

from devmesh.adapters.http import HttpPolicy
from devmesh.adapters.operations import ARTIFACT_OPERATIONS, CI_OPERATIONS, PIPELINE_OPERATIONS
from devmesh.adapters.registry import Provider
from devmesh.providers.gitlab.adapter import GitLabAdapter
from devmesh.providers.gitlab.client import CREDENTIALS
from devmesh.providers.gitlab.models import GitLabConfig
from devmesh.providers.gitlab.webhooks import GitLabWebhookNormaliser, GitLabWebhookVerifier

__all__ = ["GitLabAdapter", "GitLabConfig", "provider"]


provider = Provider(
    name="gitlab",
    title="GitLab CI",
    description=(
        "Run and watch GitLab CI pipelines and read their job logs. A project is a path "
        "like 'group/app' or a numeric id; a build is a pipeline, with id "
        "'group/app#<pipeline id>'; branch is the branch or tag to run (default: the "
        "project's default branch) and parameters become CI/CD variables. Statuses, "
        "stages, jobs, failed_stage and failure_reason are in the build's metadata. "
        "A pipeline is a pipeline schedule ('group/app#schedule-<id>'): trigger_pipeline "
        "plays it with its own ref and variables. Artifacts are each job's artifacts "
        "archive ('job-<id>'; one file of it as 'job-<id>/<path>') and its log ('trace-<id>')."
    ),
    create_adapter=GitLabAdapter,
    operations=(*CI_OPERATIONS, *PIPELINE_OPERATIONS, *ARTIFACT_OPERATIONS),
    config_model=GitLabConfig,
    credentials=CREDENTIALS,
    default_base_url="https://gitlab.com",
    # GitLab redirects only browsers; an API redirect means base_url should change.
    http=HttpPolicy(follow_redirects=False),
    webhook_verifier=GitLabWebhookVerifier(),
    webhook_normaliser=GitLabWebhookNormaliser(),
    docs_url="https://docs.gitlab.com/ee/api/rest/",
)
