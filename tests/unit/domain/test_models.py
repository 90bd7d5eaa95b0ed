"""The fields the domain models derive themselves, so no provider can get them wrong."""

from __future__ import annotations

from devmesh.domain.models import Build, BuildStatus, LogLine, LogPage


def test_a_builds_build_id_is_always_its_id() -> None:
    build = Build(id="group/app#7", project="group/app", status=BuildStatus.QUEUED)
    assert build.build_id == "group/app#7"
    forged = Build.model_validate({"id": "7", "build_id": "8", "project": "p", "status": "failed"})
    assert forged.build_id == "7"
    assert Build.model_validate(build.model_dump(mode="json")) == build


def test_a_log_pages_content_is_its_lines_as_one_text() -> None:
    page = LogPage(
        build_id="7",
        lines=[LogLine(number=1, text="$ pytest"), LogLine(number=2, text="E   boom")],
        truncated=False,
    )
    assert page.content == "$ pytest\nE   boom"
    assert LogPage.model_validate(page.model_dump(mode="json")).content == page.content
    assert page.error_pattern is None
