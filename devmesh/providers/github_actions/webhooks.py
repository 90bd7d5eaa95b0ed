"""GitHub webhooks: ``workflow_run`` and ``workflow_job`` deliveries, signed with HMAC-SHA256.

GitHub signs each delivery's raw body with the hook's secret and sends
``X-Hub-Signature-256: sha256=<hex>``; verifying recomputes it and compares in constant
time (the older SHA-1 ``X-Hub-Signature`` is not accepted). A delivery's id is
``X-GitHub-Delivery`` (a GUID, the same when a delivery is redelivered).

``workflow_run`` deliveries (``X-GitHub-Event: workflow_run``; actions ``requested``,
``in_progress``, ``completed``) become build events: the run as ``get_build_status``
shows it, without its jobs. ``workflow_job`` deliveries are verified and recorded but
make no event of their own: the run's own delivery says how it ended. ``ping`` (sent
when a hook is created) is verified and recorded, and answered like any delivery.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from devmesh.adapters.webhooks import build_event_type, header
from devmesh.providers.github_actions.builds import build_of
from devmesh.providers.github_actions.ids import RunRef
from devmesh.providers.github_actions.models import WireRun

__all__ = ["GitHubWebhookNormaliser", "GitHubWebhookVerifier", "signature"]


def signature(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256``'s value for ``body``, as GitHub computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class GitHubWebhookVerifier:
    def verify(self, *, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        sent = header(headers, "X-Hub-Signature-256")
        if not secret or sent is None:
            return False
        return hmac.compare_digest(sent.strip().encode(), signature(secret, body).encode())

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return header(headers, "X-GitHub-Delivery")


class GitHubWebhookNormaliser:
    def normalise(self, *, headers: Mapping[str, str], payload: Any) -> Sequence[Mapping[str, Any]]:
        if header(headers, "X-GitHub-Event") != "workflow_run" or not isinstance(payload, dict):
            return []
        repository = payload.get("repository")
        if not isinstance(repository, dict) or not isinstance(repository.get("full_name"), str):
            return []
        try:
            run = WireRun.model_validate(payload.get("workflow_run"))
        except ValidationError:
            return []
        build = build_of(RunRef(repository["full_name"], run.id), run)
        return [{"type": build_event_type(build.status), "data": build.model_dump(mode="json")}]
