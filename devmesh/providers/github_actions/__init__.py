"""GitHub Actions over GitHub's REST API: workflow runs as builds, run artifacts as zips.

A project is a repository (``owner/repo``, or ``owner/repo:ci.yml`` for one of its
workflows); a build is a workflow run (id ``owner/repo#<run id>``), its steps are jobs.
Register a tool with a token only for github.com, or with ``base_url`` for a GitHub
Enterprise Server.
"""

from __future__ import annotations

from devmesh.adapters.http import HttpPolicy
from devmesh.adapters.operations import ARTIFACT_OPERATIONS, CI_OPERATIONS
from devmesh.adapters.registry import Provider
from devmesh.providers.github_actions.adapter import GitHubActionsAdapter
from devmesh.providers.github_actions.credentials import CREDENTIALS
from devmesh.providers.github_actions.models import GitHubActionsConfig
from devmesh.providers.github_actions.webhooks import (
    GitHubWebhookNormaliser,
    GitHubWebhookVerifier,
)

__all__ = ["GitHubActionsAdapter", "GitHubActionsConfig", "provider"]


provider = Provider(
    name="github_actions",
    title="GitHub Actions",
    description=(
        "Run and watch GitHub Actions workflows and read their job logs. A project is a "
        "repository 'owner/repo' (its only active workflow) or 'owner/repo:ci.yml' (one "
        "workflow, by file name or id); a build is a workflow run, with id "
        "'owner/repo#<run id>' ('…#<run id>.<attempt>' for one attempt, as retry_build "
        "returns); branch is the branch or tag to run (default: the repository's default "
        "branch) and parameters become the workflow_dispatch inputs. The jobs, "
        "failed_stage (the first failed job), failed_step and failure_reason are in the "
        "build's metadata. Artifacts are the run's artifact zips ('artifact-<id>'), the "
        "files inside them ('artifact-<id>/<path>') and each job's log ('log-<job id>')."
    ),
    create_adapter=GitHubActionsAdapter,
    operations=(*CI_OPERATIONS, *ARTIFACT_OPERATIONS),
    config_model=GitHubActionsConfig,
    credentials=CREDENTIALS,
    default_base_url="https://api.github.com",
    # Logs and artifacts are redirects to signed URLs elsewhere, and a renamed
    # repository answers 301: both are followed, credentials to the API's origin only.
    http=HttpPolicy(follow_redirects=True),
    webhook_verifier=GitHubWebhookVerifier(),
    webhook_normaliser=GitHubWebhookNormaliser(),
    docs_url="https://docs.github.com/en/rest/actions",
)
