"""Start the CodeBuild stand-in as a process on loopback, and set it up through AWS's
own APIs (boto3 against moto).

``run_codebuild()`` yields the endpoint and working ``aws_keys``: an IAM user with an
access key and an allow-all policy, made before moto's IAM authentication is switched
on (``/moto-api/reset-auth``), so every later request must be signed with that key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from tests.support.standin import run_standin

__all__ = ["CodeBuildStandin", "run_codebuild"]

REGION = "us-east-1"
_ROLE = "arn:aws:iam::123456789012:role/codebuild-service-role"
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class CodeBuildStandin:
    base_url: str
    pid: int
    access_key: str
    secret_key: str

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.base_url,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(retries={"max_attempts": 1}),
        )

    async def add_project(
        self,
        name: str,
        *,
        commands: dict[str, list[str]],
        artifacts: list[str] = (),
        bucket: str = "",  # type: ignore[assignment]
    ) -> None:
        """A project whose inline buildspec runs ``commands`` ({phase: [command]})."""
        spec: dict[str, Any] = {
            "version": 0.2,
            "phases": {p: {"commands": c} for p, c in commands.items()},
        }
        target: dict[str, Any] = {"type": "NO_ARTIFACTS"}
        if artifacts:
            spec["artifacts"] = {"files": list(artifacts)}
            target = {"type": "S3", "location": bucket, "name": "out", "packaging": "NONE"}
        await asyncio.to_thread(
            self.client("codebuild").create_project,
            name=name,
            source={
                "type": "S3",
                "location": f"{bucket or 'sources'}/src.zip",
                "buildspec": json.dumps(spec),
            },
            artifacts=target,
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/standard:7.0",
                "computeType": "BUILD_GENERAL1_SMALL",
            },
            serviceRole=_ROLE,
        )

    async def add_bucket(self, name: str) -> None:
        await asyncio.to_thread(self.client("s3").create_bucket, Bucket=name)


@asynccontextmanager
async def run_codebuild() -> AsyncIterator[CodeBuildStandin]:
    async with run_standin(
        "tests.standins.codebuild", health="/moto-api/", what="CodeBuild stand-in (moto)"
    ) as running:
        iam = boto3.client(
            "iam",
            endpoint_url=running.base_url,
            region_name=REGION,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        await asyncio.to_thread(iam.create_user, UserName="devmesh")
        await asyncio.to_thread(
            iam.put_user_policy,
            UserName="devmesh",
            PolicyName="all",
            PolicyDocument=json.dumps(_ALLOW_ALL),
        )
        key = (await asyncio.to_thread(iam.create_access_key, UserName="devmesh"))["AccessKey"]
        switched = await running.control.post("/moto-api/reset-auth", content=b"0")
        switched.raise_for_status()
        yield CodeBuildStandin(
            base_url=running.base_url,
            pid=running.pid,
            access_key=key["AccessKeyId"],
            secret_key=key["SecretAccessKey"],
        )
