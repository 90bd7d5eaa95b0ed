"""Exposed MCP tool names: what strict clients accept, unambiguous, and found again."""

from __future__ import annotations

import re

import pytest

from devmesh.tools.models import CatalogEntry, OperationInfo, ToolCreate
from devmesh.tools.naming import ToolNames, looks_like_id

STRICT = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def entry(tool: str, operation: str) -> CatalogEntry:
    return CatalogEntry(
        tool=tool,
        provider="buildbot",
        operation=OperationInfo(
            name=operation,
            summary="",
            input_schema={},
            output_schema={},
            read_only=True,
            destructive=False,
            idempotent=True,
        ),
    )


def test_the_default_name_joins_instance_and_operation_with_an_underscore() -> None:
    trigger = entry("gitlab", "trigger_build")
    names = ToolNames([trigger])
    assert names.name(trigger) == "gitlab_trigger_build"
    assert STRICT.match(names.name(trigger))


def test_pairs_that_would_join_to_the_same_name_get_distinct_names() -> None:
    first, second = entry("a_b", "c"), entry("a", "b_c")
    names = ToolNames([first, second])
    assert names.name(first) != names.name(second)
    assert names.find(names.name(first)) == first
    assert names.find(names.name(second)) == second
    assert all(STRICT.match(names.name(e)) for e in (first, second))


def test_a_name_over_64_characters_is_shortened_the_same_way_every_time() -> None:
    long = entry("x" * 60, "download_artifact")
    name = ToolNames([long]).name(long)
    assert len(name) == 64
    assert STRICT.match(name)
    assert name == ToolNames([entry("other", "op"), long]).name(long)
    assert ToolNames([long]).shortened(long)


def test_the_canonical_dotted_name_finds_the_entry_too() -> None:
    long = entry("y" * 60, "get_build_status")
    names = ToolNames([entry("ci", "trigger_build"), long])
    assert names.find("ci.trigger_build") == entry("ci", "trigger_build")
    assert names.find(f"{'y' * 60}.get_build_status") == long


def test_a_dot_separator_keeps_the_canonical_names() -> None:
    trigger = entry("ci", "trigger_build")
    assert ToolNames([trigger], separator=".").name(trigger) == "ci.trigger_build"


def test_a_name_made_before_names_had_to_start_with_a_letter_gets_an_underscore() -> None:
    legacy = entry("9ci", "list_builds")
    assert ToolNames([legacy]).name(legacy) == "_9ci_list_builds"


def test_an_unknown_name_finds_nothing() -> None:
    assert ToolNames([entry("ci", "list_builds")]).find("ci_list_pipelines") is None


@pytest.mark.parametrize(
    ("ref", "shaped"),
    [
        ("0b6f8f3e-8d0e-4c55-9d6a-3f3c2b1a0e9d", True),
        ("0B6F8F3E-8D0E-4C55-9D6A-3F3C2B1A0E9D", True),
        ("ci", False),
        ("0b6f8f3e8d0e4c559d6a3f3c2b1a0e9d", False),
    ],
)
def test_looks_like_id_knows_the_shape_of_a_tool_id(ref: str, shaped: bool) -> None:
    assert looks_like_id(ref) is shaped


@pytest.mark.parametrize("name", ["abcdef01-2345-4678-9abc-def012345678", "1ci", "ci.prod"])
def test_a_tool_name_shaped_like_an_id_or_not_starting_with_a_letter_is_refused(
    name: str,
) -> None:
    with pytest.raises(ValueError, match="name"):
        ToolCreate.model_validate({"name": name, "provider": "buildbot", "base_url": "http://x"})
