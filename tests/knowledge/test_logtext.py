"""Logs made fit to index: noise out, whole lines in chunks that keep their spans."""

from devmesh.knowledge.logtext import chunk_lines, clean_lines


def test_colour_and_cursor_escapes_are_removed() -> None:
    raw = "\x1b[31mERROR\x1b[0m build \x1b]0;title\x07failed\x1b[2K\n"
    assert clean_lines(raw) == ["ERROR build failed"]


def test_a_progress_bar_redrawn_with_carriage_returns_keeps_its_last_drawing() -> None:
    raw = "Downloading 10%\rDownloading 50%\rDownloading 100%\r\nnext line\n"
    assert clean_lines(raw) == ["Downloading 100%", "next line"]


def test_crlf_line_ends_are_plain_newlines_and_line_numbers_are_kept() -> None:
    assert clean_lines("a\r\nb\r\n\r\nc") == ["a", "b", "", "c"]


def test_control_characters_go_but_tabs_stay() -> None:
    assert clean_lines("a\tb\x00\x07c\x08\n") == ["a\tbc"]


def test_chunks_cover_consecutive_line_spans_numbered_from_first_line() -> None:
    chunks = chunk_lines([f"line {n}" for n in range(1, 101)], first_line=1, max_lines=40)
    assert [(c.first_line, c.last_line) for c in chunks] == [(1, 40), (41, 80), (81, 100)]
    assert chunks[1].text.splitlines()[0] == "line 41"
    assert chunks[1].cursor == "40"


def test_a_chunk_ends_before_the_line_that_would_pass_the_character_cap() -> None:
    lines = ["x" * 60, "y" * 60, "z" * 60]
    chunks = chunk_lines(lines, first_line=10, max_chars=130)
    assert [(c.first_line, c.last_line) for c in chunks] == [(10, 11), (12, 12)]
    assert chunks[0].text == "x" * 60 + "\n" + "y" * 60


def test_blank_stretches_make_no_chunk() -> None:
    chunks = chunk_lines(["", "  ", "", "real"], max_lines=2)
    assert [(c.first_line, c.last_line, c.text) for c in chunks] == [(3, 4, "\nreal")]
