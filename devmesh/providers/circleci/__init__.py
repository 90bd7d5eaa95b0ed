"""CircleCI over its API v2: projects by slug, pipelines as builds.

A project is a project slug (``gh/org/repo``); a build id is the pipeline's id (a
UUID), or ``<pipeline id>/<workflow id>,…`` for the workflows ``retry_build`` reran.
Register a tool with base URL ``https://circleci.com`` (the default) and a personal
API token (``Circle-Token``).
"""

from __future__ import annotations

from devmesh.adapters.http import HttpPolicy
from devmesh.adapters.operations import ARTIFACT_OPERATIONS, CI_OPERATIONS
from devmesh.adapters.registry import Provider
from devmesh.providers.circleci.adapter import CircleCIAdapter
from devmesh.providers.circleci.client import CREDENTIALS
from devmesh.providers.circleci.models import CircleCIConfig
from devmesh.providers.circleci.webhooks import CircleCIWebhookNormaliser, CircleCIWebhookVerifier

__all__ = ["CircleCIAdapter", "CircleCIConfig", "provider"]


provider = Provider(
    name="circleci",
    title="CircleCI",
    description=(
        "Run and watch CircleCI pipelines and read their jobs' step output. A project is a "
        "project slug like 'gh/org/repo' (or 'bb/org/repo', 'circleci/<org id>/<project "
        "id>'); trigger_build triggers a pipeline on branch with parameters as pipeline "
        "parameters (commit is refused: CircleCI builds a branch's head). A build is a "
        "pipeline: its id is the pipeline id, its status its workflows' rolled up, "
        "failed_stage the failed job's name. cancel_build cancels its workflows; "
        "retry_build reruns them (failed ones from_failed) as a new build "
        "'<pipeline id>/<workflow id>'. Artifacts are the jobs' stored artifacts "
        "('<job number>/<path>')."
    ),
    create_adapter=CircleCIAdapter,
    operations=(*CI_OPERATIONS, *ARTIFACT_OPERATIONS),
    config_model=CircleCIConfig,
    default_base_url="https://circleci.com",
    credentials=CREDENTIALS,
    # CircleCI's API answers where it is asked; a redirect means a wrong base_url.
    http=HttpPolicy(follow_redirects=False),
    webhook_verifier=CircleCIWebhookVerifier(),
    webhook_normaliser=CircleCIWebhookNormaliser(),
    docs_url="https://circleci.com/docs/api/v2/",
)
