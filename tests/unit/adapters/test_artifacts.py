import base64

from devmesh.adapters import artifacts
from devmesh.domain.models import ArtifactChunk

TEXT = "café ✓ ünïcode\n".encode()


def chunk(
    data: bytes, *, offset: int = 0, more: bool = False, size: int | None = None
) -> ArtifactChunk:
    return ArtifactChunk(data=data, offset=offset, more=more, size=size)


def test_utf8_text_comes_back_as_text() -> None:
    read = artifacts.content("7", "log-1", chunk(TEXT, size=len(TEXT)))
    assert (read.encoding, read.content) == ("utf-8", TEXT.decode())
    assert (read.length, read.truncated, read.next_offset, read.hint) == (
        len(TEXT),
        False,
        None,
        None,
    )


def test_a_window_that_cuts_a_character_ends_before_it_and_the_next_starts_there() -> None:
    cut = TEXT.index("✓".encode()) + 1  # inside the three bytes of ✓
    first = artifacts.content("7", "log-1", chunk(TEXT[:cut], more=True))
    assert first.encoding == "utf-8"
    assert first.next_offset == cut - 1
    assert first.truncated
    second = artifacts.content("7", "log-1", chunk(TEXT[cut - 1 :], offset=cut - 1))
    assert first.content + second.content == TEXT.decode()


def test_bytes_that_are_not_utf8_come_back_as_base64() -> None:
    data = bytes([0xFF, 0xFE, 0x00, 0x41])
    read = artifacts.content("7", "data-x", chunk(data))
    assert read.encoding == "base64"
    assert base64.b64decode(read.content) == data


def test_valid_utf8_full_of_control_bytes_is_binary() -> None:
    data = bytes(range(64))  # all ASCII, so valid UTF-8, but NULs and controls
    read = artifacts.content("7", "data-x", chunk(data))
    assert read.encoding == "base64"
    assert base64.b64decode(read.content) == data


def test_tabs_newlines_and_ansi_colours_are_text() -> None:
    data = b"\x1b[31mFAILED\x1b[0m\tline\r\n"
    assert artifacts.content("7", "log-1", chunk(data)).encoding == "utf-8"


def test_a_truncated_read_says_where_to_go_on() -> None:
    read = artifacts.content("7", "log-1", chunk(b"abcd", offset=100, more=True, size=1000))
    assert (read.offset, read.length, read.next_offset) == (100, 4, 104)
    assert read.hint is not None and "offset=104" in read.hint and "of 1000" in read.hint


def test_reading_past_the_end_returns_nothing_and_says_so() -> None:
    read = artifacts.content("7", "log-1", chunk(b"", offset=5000, size=1000))
    assert (read.content, read.length, read.truncated) == ("", 0, False)
    assert read.hint is not None and "past the end" in read.hint


def test_a_cut_character_at_the_true_end_of_a_file_is_binary_not_dropped() -> None:
    data = "✓".encode()[:2]
    read = artifacts.content("7", "data-x", chunk(data))
    assert read.encoding == "base64"
    assert read.length == 2
