"""The GitLab stand-in answers as GitLab's v4 API documents, seen by a plain HTTP client.

One stand-in process for the session, reset before each test; the clock is manual
where a test looks at a state between transitions, so nothing depends on timing.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.standins.gitlab import GitLabStandin

pytestmark = pytest.mark.anyio

TOKEN = "glpat-standin-test"
TWO_STAGES: dict[str, Any] = {
    "stages": ["build", "test"],
    "created_s": 0.5,
    "jobs": [
        {"name": "compile", "stage": "build", "queued_s": 1, "duration_s": 2,
         "artifacts": {"dist/app.txt": "built\n"}},
        {"name": "unit", "stage": "test", "queued_s": 1, "duration_s": 2,
         "script": ["$ make test", "ok 1", "ok 2", "ok 3"]},
    ],
}  # fmt: skip


@pytest.fixture
async def gitlab(gitlab_standin: GitLabStandin) -> GitLabStandin:
    await gitlab_standin.seed(path="group/app", token=TOKEN, script=TWO_STAGES)
    await gitlab_standin.manual_clock()
    return gitlab_standin


@pytest.fixture
async def api(gitlab: GitLabStandin) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"PRIVATE-TOKEN": TOKEN}
    async with httpx.AsyncClient(base_url=gitlab.api_url, headers=headers, trust_env=False) as c:
        yield c


async def _start(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await api.post("/projects/group%2Fapp/pipeline", json={"ref": "main", **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def _status(api: httpx.AsyncClient, pipeline_id: int) -> str:
    return str((await api.get(f"/projects/1/pipelines/{pipeline_id}")).json()["status"])


async def test_a_pipeline_moves_from_created_through_pending_and_running_to_success(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    pipeline = await _start(api)
    seen = [pipeline["status"]]
    for _ in range(8):
        await gitlab.advance(1)
        seen.append(await _status(api, pipeline["id"]))
    assert seen[:4] == ["created", "pending", "running", "running"]
    assert seen[-1] == "success"
    final = (await api.get(f"/projects/1/pipelines/{pipeline['id']}")).json()
    assert final["detailed_status"]["group"] == "success"
    assert final["started_at"] and final["finished_at"] and final["duration"] == 4


async def test_a_created_pipeline_has_the_documented_fields_and_types(
    api: httpx.AsyncClient,
) -> None:
    pipeline = await _start(api, variables=[{"key": "DEPLOY", "value": "no"}])
    assert pipeline["iid"] == 1 and pipeline["project_id"] == 1 and pipeline["source"] == "api"
    assert len(pipeline["sha"]) == 40 and pipeline["tag"] is False
    assert pipeline["yaml_errors"] is None and pipeline["user"]["username"] == "root"
    assert pipeline["created_at"].endswith("Z") and pipeline["started_at"] is None
    assert pipeline["web_url"].endswith("/group/app/-/pipelines/1")
    variables = (await api.get("/projects/1/pipelines/1/variables")).json()
    assert variables == [{"key": "DEPLOY", "variable_type": "env_var", "value": "no"}]


async def test_a_failing_job_has_a_failure_reason_a_trace_and_skips_later_stages(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    failing = {**TWO_STAGES["jobs"][0], "fails": True, "script": ["$ make", "error: boom"]}
    await gitlab.set_script(1, {**TWO_STAGES, "jobs": [failing, TWO_STAGES["jobs"][1]]})
    pipeline = await _start(api)
    await gitlab.advance(10)

    assert await _status(api, pipeline["id"]) == "failed"
    jobs = {j["name"]: j for j in (await api.get("/projects/1/pipelines/1/jobs")).json()}
    assert jobs["compile"]["status"] == "failed"
    assert jobs["compile"]["failure_reason"] == "script_failure"
    assert jobs["unit"]["status"] == "skipped" and "failure_reason" not in jobs["unit"]
    log = await api.get(f"/projects/1/jobs/{jobs['compile']['id']}/trace")
    assert log.headers["content-type"].startswith("text/plain")
    assert "section_start:" in log.text and "\x1b[32;1m$ make" in log.text
    assert "error: boom" in log.text and "ERROR: Job failed: exit code 1" in log.text


async def test_a_trace_grows_while_the_job_runs(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    await _start(api)
    await gitlab.advance(4.5)  # compile done at 3.5; unit queued to 4.5, then runs 2 s
    jobs = {j["name"]: j for j in (await api.get("/projects/1/pipelines/1/jobs")).json()}
    unit = f"/projects/1/jobs/{jobs['unit']['id']}/trace"
    assert "ok 1" not in (await api.get(unit)).text
    await gitlab.advance(1.0)
    halfway = (await api.get(unit)).text
    # Half the run time shows half the lines: the command and its first output.
    assert "ok 1" in halfway and "ok 2" not in halfway and "Job succeeded" not in halfway
    await gitlab.advance(1.0)
    assert "Job succeeded" in (await api.get(unit)).text


async def test_list_pipelines_pages_with_gitlabs_headers_and_link(
    api: httpx.AsyncClient,
) -> None:
    for _ in range(5):
        await _start(api)
    answer = await api.get("/projects/1/pipelines", params={"per_page": 2, "page": 2})
    assert [p["id"] for p in answer.json()] == [3, 2]
    headers = answer.headers
    assert (headers["x-page"], headers["x-per-page"], headers["x-total"]) == ("2", "2", "5")
    assert (headers["x-next-page"], headers["x-prev-page"], headers["x-total-pages"]) == (
        "3",
        "1",
        "3",
    )
    assert 'page=3&per_page=2>; rel="next"' in headers["link"]
    assert 'rel="last"' in headers["link"] and 'rel="prev"' in headers["link"]
    last = await api.get("/projects/1/pipelines", params={"per_page": 2, "page": 3})
    assert last.headers["x-next-page"] == "" and [p["id"] for p in last.json()] == [1]


async def test_list_pipelines_filters_by_status_and_rejects_an_unknown_status(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    await _start(api)
    await gitlab.advance(10)
    await _start(api)
    running = await api.get("/projects/1/pipelines", params={"status": "success"})
    assert [p["id"] for p in running.json()] == [1]
    bad = await api.get("/projects/1/pipelines", params={"status": "nope"})
    assert (bad.status_code, bad.json()) == (400, {"error": "status does not have a valid value"})


async def test_an_unknown_token_is_401_and_an_unseen_project_is_404(
    gitlab: GitLabStandin,
) -> None:
    await gitlab.add_project("other/secret")
    await gitlab.add_token("glpat-narrow", username="root", projects=[1])
    async with httpx.AsyncClient(base_url=gitlab.api_url, trust_env=False) as client:
        bad = await client.get("/projects/1", headers={"PRIVATE-TOKEN": "wrong"})
        assert (bad.status_code, bad.json()) == (401, {"message": "401 Unauthorized"})
        anonymous = await client.get("/projects/1/jobs/1")
        assert anonymous.status_code == 401
        narrow = {"Authorization": "Bearer glpat-narrow"}
        hidden = await client.get("/projects/other%2Fsecret", headers=narrow)
        assert (hidden.status_code, hidden.json()) == (404, {"message": "404 Project Not Found"})
        assert (await client.get("/projects/group%2Fapp", headers=narrow)).json()["id"] == 1


async def test_a_read_only_token_cannot_create_a_pipeline(gitlab: GitLabStandin) -> None:
    await gitlab.add_token("glpat-read", username="root", scopes=["read_api"])
    async with httpx.AsyncClient(base_url=gitlab.api_url, trust_env=False) as client:
        answer = await client.post(
            "/projects/1/pipeline", params={"ref": "main"}, headers={"PRIVATE-TOKEN": "glpat-read"}
        )
    assert answer.status_code == 403 and answer.json()["error"] == "insufficient_scope"


async def test_a_pipeline_on_an_unknown_ref_is_400_reference_not_found(
    api: httpx.AsyncClient,
) -> None:
    answer = await api.post("/projects/1/pipeline", json={"ref": "nope"})
    assert answer.status_code == 400
    assert answer.json() == {"message": {"base": ["Reference not found"]}}


async def test_a_missing_pipeline_or_job_is_404_not_found(api: httpx.AsyncClient) -> None:
    for path in ("/projects/1/pipelines/99", "/projects/1/jobs/99"):
        answer = await api.get(path)
        assert (answer.status_code, answer.json()) == (404, {"message": "404 Not found"})


async def test_an_injected_429_carries_retry_after_and_ratelimit_headers(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    await gitlab.inject(429, retry_after=7, path="/pipelines")
    throttled = await api.get("/projects/1/pipelines")
    assert throttled.status_code == 429 and throttled.text == "Retry later\n"
    assert throttled.headers["retry-after"] == "7"
    for name in ("limit", "observed", "remaining", "reset", "resettime"):
        assert throttled.headers[f"ratelimit-{name}"]
    assert (await api.get("/projects/1/pipelines")).status_code == 200


async def test_the_throttle_answers_429_past_its_limit(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    await gitlab.rate_limit(2, always_headers=True)
    first = await api.get("/projects/1")
    assert first.headers["ratelimit-remaining"] == "1"
    assert (await api.get("/projects/1")).status_code == 200
    third = await api.get("/projects/1")
    assert third.status_code == 429 and int(third.headers["retry-after"]) > 0


async def test_an_injected_503_answers_count_times_then_recovers(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    await gitlab.inject(503, count=2, method="GET")
    statuses = [(await api.get("/projects/1")).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


async def test_a_successful_job_serves_its_artifacts_as_a_zip_and_one_by_one(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    await _start(api)
    await gitlab.advance(10)
    archive = await api.get("/projects/1/jobs/1/artifacts")
    assert archive.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(archive.content)).read("dist/app.txt") == b"built\n"
    assert (await api.get("/projects/1/jobs/1/artifacts/dist/app.txt")).text == "built\n"
    assert (await api.get("/projects/1/jobs/1/artifacts/dist/missing")).status_code == 404
    assert (await api.get("/projects/1/jobs/2/artifacts")).status_code == 404
    job = (await api.get("/projects/1/jobs/1")).json()
    assert job["artifacts_file"]["filename"] == "artifacts.zip"


async def test_retrying_a_job_that_failed_once_makes_the_pipeline_succeed(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    flaky = {**TWO_STAGES["jobs"][1], "fails": True, "fail_attempts": 1}
    await gitlab.set_script(1, {**TWO_STAGES, "jobs": [TWO_STAGES["jobs"][0], flaky]})
    await _start(api)
    await gitlab.advance(10)
    assert await _status(api, 1) == "failed"
    retried = await api.post("/projects/1/jobs/2/retry")
    assert retried.status_code == 201 and retried.json()["status"] == "pending"
    await gitlab.advance(10)
    assert await _status(api, 1) == "success"
    latest = (await api.get("/projects/1/pipelines/1/jobs")).json()
    every = (await api.get("/projects/1/pipelines/1/jobs?include_retried=true")).json()
    assert (len(latest), len(every)) == (2, 3)


async def test_canceling_a_running_pipeline_cancels_its_jobs(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    await _start(api)
    await gitlab.advance(2)
    canceled = await api.post("/projects/1/pipelines/1/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    jobs = (await api.get("/projects/1/pipelines/1/jobs")).json()
    assert {job["status"] for job in jobs} == {"canceled"}


async def test_playing_a_schedule_answers_201_created_and_starts_a_pipeline(
    gitlab: GitLabStandin, api: httpx.AsyncClient
) -> None:
    schedule_id = await gitlab.add_schedule(project=1, description="nightly", ref="main")
    listed = (await api.get("/projects/1/pipeline_schedules")).json()
    assert listed[0]["ref"] == "refs/heads/main" and listed[0]["active"] is True
    played = await api.post(f"/projects/1/pipeline_schedules/{schedule_id}/play")
    assert (played.status_code, played.json()) == (201, {"message": "201 Created"})
    pipelines = (await api.get("/projects/1/pipelines", params={"source": "schedule"})).json()
    assert len(pipelines) == 1
    schedule = (await api.get(f"/projects/1/pipeline_schedules/{schedule_id}")).json()
    assert schedule["last_pipeline"]["id"] == pipelines[0]["id"]
