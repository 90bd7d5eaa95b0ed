"""Jenkins over its remote access API: jobs as projects, their builds as builds.

A project is a job's full name, folders joined by '/' (``team/app``); a build id is
``team/app#42``, or ``team/app#queue-17`` for a build still in the queue (what
``trigger_build`` returns). Register a tool with the controller's root URL and a
user name with an API token.
"""

from __future__ import annotations

from devmesh.adapters.http import HttpPolicy
from devmesh.adapters.operations import ARTIFACT_OPERATIONS, CI_OPERATIONS
from devmesh.adapters.registry import Provider
from devmesh.providers.jenkins.adapter import JenkinsAdapter
from devmesh.providers.jenkins.client import CREDENTIALS
from devmesh.providers.jenkins.models import JenkinsConfig
from devmesh.providers.jenkins.webhooks import JenkinsWebhookNormaliser, JenkinsWebhookVerifier

__all__ = ["JenkinsAdapter", "JenkinsConfig", "provider"]


provider = Provider(
    name="jenkins",
    title="Jenkins",
    description=(
        "Run and watch Jenkins jobs and read their console logs. A project is a job's full "
        "name, folders joined by '/' (like 'team/app'); parameters must be parameters the "
        "job defines (branch and commit are refused: pass them as job parameters if the "
        "job has them). trigger_build returns a queued build 'team/app#queue-<id>' that "
        "get_build_status follows to the build it becomes, 'team/app#<number>'. "
        "UNSTABLE counts as failed; jenkins_result, parameters and causes are in the "
        "build's metadata. Artifacts are the build's archived files ('artifact/<path>') "
        "and its console ('console', readable from any offset while the build runs)."
    ),
    create_adapter=JenkinsAdapter,
    operations=(*CI_OPERATIONS, *ARTIFACT_OPERATIONS),
    config_model=JenkinsConfig,
    credentials=CREDENTIALS,
    # A redirect means base_url lacks the context path or https; say so, do not follow.
    http=HttpPolicy(follow_redirects=False),
    webhook_verifier=JenkinsWebhookVerifier(),
    webhook_normaliser=JenkinsWebhookNormaliser(),
    docs_url="https://www.jenkins.io/doc/book/using/remote-access-api/",
)
