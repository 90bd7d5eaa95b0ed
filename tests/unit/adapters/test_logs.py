import pytest

from devmesh.adapters import logs
from devmesh.domain.errors import InvalidInput
from devmesh.domain.models import LogLine

LINES = [LogLine(number=i, step="test", text=f"line {i}") for i in range(1, 251)]


def test_the_default_view_is_the_tail_and_says_how_to_get_more() -> None:
    page = logs.page("7", LINES, tail=100)
    assert [line.number for line in page.lines] == list(range(151, 251))
    assert page.truncated
    assert page.hint is not None and "cursor='0'" in page.hint


def test_a_short_log_is_returned_whole_and_not_truncated() -> None:
    page = logs.page("7", LINES[:10], tail=100)
    assert len(page.lines) == 10
    assert not page.truncated
    assert page.hint is None


def test_cursor_pages_walk_the_whole_log_in_order() -> None:
    seen: list[int] = []
    cursor: str | None = "0"
    while cursor is not None:
        page = logs.page("7", LINES, cursor=cursor, limit=100)
        seen += [line.number for line in page.lines]
        cursor = page.next_cursor
    assert seen == list(range(1, 251))


def test_a_cursor_not_made_by_us_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        logs.page("7", LINES, cursor="abc")
    assert caught.value.field == "cursor"


def test_search_shows_context_around_each_match() -> None:
    result = logs.search("7", LINES, pattern=r"line 10$", context=2)
    [match] = result.matches
    assert match.line.number == 10
    assert [x.number for x in match.before] == [8, 9]
    assert [x.number for x in match.after] == [11, 12]


def test_search_stops_at_the_cap_and_says_so() -> None:
    result = logs.search("7", LINES, pattern="line", max_matches=5)
    assert len(result.matches) == 5
    assert result.truncated
    assert result.hint is not None


def test_a_bad_regular_expression_names_the_pattern_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        logs.search("7", LINES, pattern="(unclosed")
    assert caught.value.field == "pattern"


def test_very_long_lines_are_clipped() -> None:
    page = logs.page("7", [LogLine(number=1, text="x" * 10_000)], tail=1)
    assert len(page.lines[0].text) < 2100
