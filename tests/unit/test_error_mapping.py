"""Every domain error maps once to REST and once to MCP; this table pins both."""

import pytest

from devmesh.api.errors import status_for
from devmesh.domain import errors as e
from devmesh.mcp.errors import error_answer, error_payload

TABLE: list[tuple[type[e.DevMeshError], int, bool]] = [
    (e.DevMeshError, 400, False),
    (e.NotFound, 404, False),
    (e.UnknownTool, 404, False),
    (e.Conflict, 409, False),
    (e.InvalidInput, 422, False),
    (e.Unauthorized, 401, False),
    (e.Forbidden, 403, False),
    (e.RateLimited, 429, True),
    (e.Unavailable, 503, True),
    (e.AdapterError, 502, False),
    (e.UpstreamNotFound, 404, False),
    (e.UpstreamAuthFailed, 502, False),
    (e.UpstreamInvalidArgument, 422, False),
    (e.UpstreamRateLimited, 429, True),
    (e.UpstreamTimeout, 504, True),
    (e.UpstreamUnavailable, 503, True),
]


def test_the_table_covers_every_error_class() -> None:
    exported = {getattr(e, name) for name in e.__all__}
    assert exported == {cls for cls, _, _ in TABLE}


@pytest.mark.parametrize(("cls", "status", "retriable"), TABLE)
def test_rest_status_and_mcp_error_result(
    cls: type[e.DevMeshError], status: int, retriable: bool
) -> None:
    error = cls("build 42 not found on ci", details={"build_id": "42"})
    assert status_for(error) == status
    result = error_answer(error).result()
    assert result.is_error is True
    assert result.structured_content is None
    assert error_payload(result) == {
        "error": cls.code,
        "message": "build 42 not found on ci",
        "retriable": retriable,
        "details": {"build_id": "42"},
    }
    assert result.content[0].text.startswith("build 42 not found on ci")  # type: ignore[union-attr]
