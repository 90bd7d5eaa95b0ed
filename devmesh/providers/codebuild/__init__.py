"""AWS CodeBuild through the AWS SDK: projects as projects, their builds as builds.

A project is a CodeBuild project's name; a build id is CodeBuild's own
(``my-project:<uuid>``). Register a tool with base_url ``https://amazonaws.com`` (AWS
itself; the region is in config) or the one endpoint of a LocalStack, moto or VPC
endpoint, and ``aws_keys`` credentials.
"""

from __future__ import annotations

from devmesh.adapters.operations import ARTIFACT_OPERATIONS, CI_OPERATIONS
from devmesh.adapters.registry import Provider
from devmesh.providers.codebuild.adapter import CodeBuildAdapter
from devmesh.providers.codebuild.client import CREDENTIALS
from devmesh.providers.codebuild.models import CodeBuildConfig
from devmesh.providers.codebuild.webhooks import (
    CodeBuildWebhookNormaliser,
    CodeBuildWebhookVerifier,
)

__all__ = ["CodeBuildAdapter", "CodeBuildConfig", "provider"]


provider = Provider(
    name="codebuild",
    title="AWS CodeBuild",
    description=(
        "Run and watch AWS CodeBuild builds and read their CloudWatch logs. A project is a "
        "CodeBuild project name; a build id is CodeBuild's ('my-project:<uuid>'). "
        "trigger_build takes commit or branch (the source version) and parameters "
        "(environment variables for the build). failed_stage is the first CodeBuild "
        "phase that failed (INSTALL, PRE_BUILD, BUILD, ...), and logs are split into "
        "those phases. Artifacts are the objects at the build's S3 artifact location."
    ),
    create_adapter=CodeBuildAdapter,
    operations=(*CI_OPERATIONS, *ARTIFACT_OPERATIONS),
    config_model=CodeBuildConfig,
    credentials=CREDENTIALS,
    default_base_url="https://amazonaws.com",
    webhook_verifier=CodeBuildWebhookVerifier(),
    webhook_normaliser=CodeBuildWebhookNormaliser(),
    docs_url="https://docs.aws.amazon.com/codebuild/latest/APIReference/Welcome.html",
)
