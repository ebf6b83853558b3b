"""Hostile novels: property tests of decoding, chapter splitting and the EPUB/DOCX readers, and
inputs built to make a parser's work grow faster than its input.

- Any bytes, any text, any EPUB or DOCX with bytes flipped or cut: `load_novel` returns a novel
  or raises one of `BAD_NOVEL` (the refusals a user is told), nothing else. A novel's chapters
  lie in its text, in order, without overlap, none longer than the limit.
- Megabytes of `第`, of spaces, of newlines, of "第一", of headings with nothing under them,
  of contents lines, one line without a break, as text, EPUB and DOCX: twice the input costs
  less than three times the CPU (`time.process_time`, the best of rounds that take turns),
  where a parser that is quadratic would cost four. Thousands of empty "第一章" headings
  were: the contents detector walked the rest of the run once per heading (16 s for 25,000;
  now 0.3 s).

Examples per property: HYPOTHESIS_EXAMPLES (default 25; 400 with JOBRUNNER_FULL=1). The scaling
inputs are 32 KB and 64 KB by default (the quadratic contents detector took 4x there
too), 2 MB and 4 MB in the full profile.
"""

from __future__ import annotations

import gc
import os
import struct
import time
from collections.abc import Callable

import pytest
from books import Part, docx, epub
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobrunner_cineqo._novel.archive import BadBook
from jobrunner_cineqo._novel.novel import BAD_NOVEL, Novel, load_novel

FULL = os.environ.get("JOBRUNNER_FULL", "").lower() in {"1", "true", "yes"}
EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "400" if FULL else "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a shared machine: time is asserted below as ratios, not per example
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMIT = 400  # a small chapter limit, so long chapters are cut too

# What headings, contents lists and their parsers are made of, mixed with anything at all.
FRAGMENTS = [
    "第", "一", "二", "十", "百", "千", "零", "两", "〇", "章", "节", "回", "卷", "集", "部",
    "篇", "话", "正文", "序章", "楔子", "终章", "番外", "后记", "目录", "目 录", "Contents",
    "CHAPTER", "Chapter", "BOOK", "Part", "Vol.", "Prologue", "EPILOGUE", " ", "  ", "\t",
    "\u3000", "\n", "\n\n", "\r\n", "\r", ".", "...", "……", "···", "．．．", "___", "【", "】",
    "[", "]", "(", "（", "）", "—", "-", ":", "：", "I", "V", "X", "iv", "MCM", "0", "7", "12",
    "1999", "他走了。", "“你好，”她说。", "The whale.", "，", "。", "！", "？", "\ufeff", "\x00",
    "\x1b", "\u200b", "\ud7ff", "\U0001f600",
]  # fmt: skip
hostile_text = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=400).map("".join),
    st.text(max_size=2000),
)
ENCODINGS = [None, "utf-8", "gb18030", "gbk", "big5", "utf-16", "shift_jis", "latin-1"]


def _read(data: bytes, **kwargs: object) -> Novel | None:
    """The novel, or None when it is refused the documented way; anything else escapes."""
    try:
        return load_novel(data, max_chapter_chars=LIMIT, **kwargs)  # type: ignore[arg-type]
    except BAD_NOVEL:
        return None


def _well_formed(novel: Novel) -> None:
    ends = 0
    for section in novel.outline.sections:
        assert ends <= section.start <= section.end <= len(novel.text), novel.outline.sections
        ends = section.end
    for chapter in novel.chapters():
        assert chapter.chars <= LIMIT, (chapter.title, chapter.chars)


@FUZZ
@given(data=st.binary(max_size=4000), encoding=st.sampled_from(ENCODINGS))
def test_any_bytes_are_a_novel_or_a_documented_refusal(data: bytes, encoding: str | None) -> None:
    novel = _read(data, encoding=encoding)
    if novel is not None:
        _well_formed(novel)


@FUZZ
@given(text=hostile_text)
def test_any_text_splits_into_chapters_in_order_within_the_limit(text: str) -> None:
    novel = _read(text.encode("utf-8", "surrogatepass"), inline=True)
    if novel is not None:
        _well_formed(novel)
        assert novel.text, "an empty novel is refused, not returned"


@FUZZ
@given(data=hostile_text.map(lambda t: t.encode("gb18030", "replace")))
def test_any_gb18030_file_decodes_or_is_refused(data: bytes) -> None:
    novel = _read(data)
    if novel is not None:
        _well_formed(novel)


BOOK = [
    Part(title="第一章 开端", text="他走了。\n\n“你好，”她说。"),
    Part(title="第二章 中途", text="天黑了。"),
    Part(title="第三章 结尾", text="完。"),
]
BOOKS = {"epub": epub(BOOK), "epub2": epub(BOOK, version=2), "docx": docx(BOOK)}


@FUZZ
@given(
    kind=st.sampled_from(sorted(BOOKS)),
    flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 1 << 16)),
)
def test_a_damaged_book_is_read_or_refused(
    kind: str, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(BOOKS[kind])
    for at, value in flips:
        data[at % len(data)] = value
    novel = _read(bytes(data[:cut] if cut is not None else data))
    if novel is not None:
        _well_formed(novel)


@pytest.mark.parametrize("kind", ["epub", "docx"])
def test_a_directory_entry_that_needs_a_newer_zip_version_is_a_damaged_book(kind: str) -> None:
    # Found by the full profile: one byte flipped in a member's "version needed to extract"
    # (6.4, past what zipfile reads) raised NotImplementedError from zipfile, not a refusal.
    data = bytearray(BOOKS[kind])
    at = data.index(b"PK\x01\x02")  # the first central directory entry
    data[at + 6 : at + 8] = struct.pack("<H", 64)
    with pytest.raises(BadBook, match="damaged or cut short: its ZIP directory cannot be read"):
        load_novel(bytes(data))


@pytest.mark.parametrize("kind", ["epub", "docx"])
def test_a_directory_that_points_before_the_archive_is_a_damaged_book(kind: str) -> None:
    # Found by 3,000 examples: the end record placing the directory later than it is makes
    # zipfile seek before the archive's start for a member, a ValueError, not a refusal.
    data = bytearray(BOOKS[kind])
    at = data.rindex(b"PK\x05\x06")  # the end of central directory record
    (where,) = struct.unpack("<I", data[at + 16 : at + 20])
    data[at + 16 : at + 20] = struct.pack("<I", where + 65536)
    with pytest.raises(BadBook, match="damaged|cannot be"):
        load_novel(bytes(data))


@FUZZ
@given(
    parts=st.lists(st.tuples(hostile_text, hostile_text), min_size=1, max_size=6),
    kind=st.sampled_from(["epub", "docx"]),
)
def test_a_book_of_hostile_text_is_read_or_refused(parts: list[tuple[str, str]], kind: str) -> None:
    book = [Part(title=t, text=x) for t, x in parts]
    data = epub(book) if kind == "epub" else docx(book)
    novel = _read(data)
    if novel is not None:
        _well_formed(novel)


# -- work that grows with the input ---------------------------------------------------------

SMALL, LARGE = (2 << 20, 4 << 20) if FULL else (32 << 10, 64 << 10)
ROUNDS, ROUND_SECONDS = (5, 0.1) if FULL else (3, 0.05)


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda size: unit * max(1, size // len(unit.encode()))


TEXTS: dict[str, Callable[[int], str]] = {
    "第": _repeat("第"),
    "spaces": lambda size: "正文\n" + " " * size,
    "newlines": lambda size: "正文" + "\n" * size,
    "第一": _repeat("第一"),
    "empty headings": _repeat("\n第一章"),
    "numbered empty headings": lambda size: "".join(f"\n第{n}章" for n in range(1, size // 10)),
    "contents lines": lambda size: "目录\n" + _repeat("第一章 开端 ...... 1\n")(size),
    "one long line": _repeat("他走了"),
    "dot leaders": lambda size: "第一章 " + "." * size + " 1",
    "spaced lines": _repeat(" " * 60 + "第\n"),
    "CHAPTER": _repeat("\nCHAPTER "),
    "roman": lambda size: "Chapter " + "M" * size,
    "brackets": _repeat("【第"),
}


def _round(work: Callable[[], object]) -> float:
    """CPU seconds of one run of `work`, over as many runs as take ROUND_SECONDS (so a run of a
    millisecond is not lost in the clock's noise)."""
    runs, started = 0, time.process_time()
    while True:
        work()
        runs += 1
        spent = time.process_time() - started
        if spent >= ROUND_SECONDS:
            return spent / runs


def _assert_linear(make: Callable[[int], bytes], **kwargs: object) -> None:
    small, large = make(SMALL), make(LARGE)
    _read(small, **kwargs)  # warm up: imports, caches
    # Rounds of the two sizes take turns, so both meet the same load on a busy machine; the
    # best round of each counts. The cyclic garbage collector is off meanwhile: its passes
    # cost with everything the process holds (hypothesis' examples too), not with the input.
    t_small = t_large = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            t_small = min(t_small, _round(lambda: _read(small, **kwargs)))
            t_large = min(t_large, _round(lambda: _read(large, **kwargs)))
    finally:
        gc.enable()
    ratio = t_large / t_small
    assert ratio < 3.0, f"{len(small):,} B: {t_small:.4f} s; {len(large):,} B: {t_large:.4f} s"


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_twice_the_text_costs_at_most_about_twice_the_work(name: str) -> None:
    assert len(TEXTS[name](LARGE).encode()) >= 1.8 * len(TEXTS[name](SMALL).encode())
    _assert_linear(lambda size: TEXTS[name](size).encode(), inline=True)


BOOK_TEXTS = (
    ["第", "empty headings", "contents lines", "one long line"]
    if FULL
    else [
        "empty headings",
        "one long line",
    ]
)


@pytest.mark.parametrize("name", BOOK_TEXTS)
@pytest.mark.parametrize("kind", ["epub", "docx"])
def test_twice_the_book_costs_at_most_about_twice_the_work(name: str, kind: str) -> None:
    def make(size: int) -> bytes:
        # A number every 40 characters keeps the archive from compressing a hundredfold,
        # which the reader refuses as a zip bomb before parsing anything.
        unit = TEXTS[name](40)
        text = "".join(f"{unit}{n:x}" for n in range(size // (len(unit.encode()) + 4)))
        book = [Part(title="第一章 开端", text=text), Part(title="第二章 结尾", text="完。")]
        return epub(book) if kind == "epub" else docx(book)

    _assert_linear(make)
