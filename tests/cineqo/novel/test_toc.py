"""Tables of contents of every common shape, added to the real 西游记 (and Pride and Prejudice):
the split always comes out as the book's true structure — 100 回 numbered 1..100 — with the
list skipped, never as a chapter of its own or a numbering that starts at 100."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import pytest
from corpus import PRIDE, XIYOUJI, novel_bytes

from jobrunner_cineqo._novel.chapters import Chapter, Split, split_chapters
from jobrunner_cineqo._novel.decode import decode_novel

FIRST = "第一回 灵根育孕源流出 心性修持大道生"
LAST = "第一百回 径回东土 五圣成真"
VOLUMES = [
    "第一卷 石猴出世",
    "第二卷 取经缘起",
    "第三卷 西行路上",
    "第四卷 火焰山前",
    "第五卷 五圣成真",
]


@functools.cache
def xiyouji() -> tuple[str, list[Chapter]]:
    """The title line and the 100 回 (title, text) of the real file."""
    split = split_chapters(decode_novel(novel_bytes(XIYOUJI)).text)
    front, *chapters = split.chapters
    assert front.kind == "front_matter" and len(chapters) == 100
    return front.text, chapters


def body(chapters: list[Chapter]) -> str:
    return "\n\n".join(f"{c.title}\n\n{c.text}" for c in chapters)


def titles() -> list[str]:
    return [c.title for c in xiyouji()[1]]


def story(split: Split) -> list[Chapter]:
    return [c for c in split.chapters if c.kind == "chapter" and c.part in (None, 1)]


def assert_true_structure(split: Split) -> list[Chapter]:
    """100 回, numbered 1..100, with their real titles and text, and no numbering warning."""
    chapters = story(split)
    assert [c.number for c in chapters] == list(range(1, 101))
    assert (chapters[0].title, chapters[-1].title) == (FIRST, LAST)
    assert chapters[0].text.startswith("    诗曰：")
    assert chapters[-1].text.endswith("《西游记》至此终。")
    assert not any(re.search("numbering|goes back|duplicate|gap", w) for w in split.warnings)
    toc_lines = {*titles(), "目录"}
    for c in split.chapters:
        if c.kind == "chapter":
            assert not toc_lines & set(c.text.splitlines()), c.title  # no list inside a chapter
    return chapters


def toc_warnings(split: Split) -> list[str]:
    return [w for w in split.warnings if w.startswith("skipped a table of contents")]


def test_a_list_before_the_title_line_ends_where_the_numbering_restarts() -> None:
    """The field report: 目录, 100 entries, then the book's title line, then 第一回."""
    title_line, chapters = xiyouji()
    text = "目录\n" + "\n".join(titles()) + f"\n\n{title_line}\n\n" + body(chapters)
    split = split_chapters(text)
    assert_true_structure(split)
    assert split.warnings == (f"skipped a table of contents of 100 entries ({FIRST} … {LAST})",)
    front = split.chapters[0]
    assert front.kind == "front_matter"
    assert front.text.startswith("目录\n第一回") and front.text.endswith(title_line)


def test_a_list_after_the_title_line() -> None:
    title_line, chapters = xiyouji()
    text = f"{title_line}\n\n目录\n\n" + "\n".join(titles()) + "\n\n" + body(chapters)
    split = split_chapters(text)
    assert_true_structure(split)
    assert len(toc_warnings(split)) == 1


@pytest.mark.parametrize(
    "leader",
    [
        lambda n, t: f"{t} {'.' * (48 - len(t))} {n * 9}",
        lambda n, t: f"{t}……………………{n * 9}",
        lambda n, t: f"{t}{'·' * 60}{n * 9}",  # long enough that the line passes 100 characters
        lambda n, t: f"{t} . . . . . . . {n * 9}",
    ],
    ids=["dots", "ellipses", "long-middle-dots", "spaced-dots"],
)
def test_a_list_with_dot_leaders_and_page_numbers(leader: Callable[[int, str], str]) -> None:
    title_line, chapters = xiyouji()
    entries = [leader(n, t) for n, t in enumerate(titles(), 1)]
    split = split_chapters(
        f"{title_line}\n\n目　录\n" + "\n".join(entries) + "\n\n" + body(chapters)
    )
    assert_true_structure(split)
    assert len(toc_warnings(split)) == 1


def test_a_list_with_page_numbers_on_their_own_lines() -> None:
    title_line, chapters = xiyouji()
    entries = [f"{t}\n{n * 9}" for n, t in enumerate(titles(), 1)]
    split = split_chapters(f"{title_line}\n\n" + "\n".join(entries) + "\n\n" + body(chapters))
    assert_true_structure(split)


def test_entries_that_differ_from_the_headings() -> None:
    """Arabic or full-width numbers, only the first half of each title, odd spacing."""
    title_line, chapters = xiyouji()
    shapes = ["第{n}回　{a}", "第{wide}回 {a}", "　　第{n}回\t{a} {b}"]
    entries = []
    for n, t in enumerate(titles(), 1):
        a, _, b = t.split(" ", 1)[1].partition(" ")
        wide = str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        entries.append(shapes[n % 3].format(n=n, wide=wide, a=a, b=b))
    text = "目录\n" + "\n".join(entries) + f"\n\n{title_line}\n\n" + body(chapters)
    split = split_chapters(text)
    assert_true_structure(split)
    assert len(toc_warnings(split)) == 1


def test_entries_with_a_subtitle_line_under_each() -> None:
    title_line, chapters = xiyouji()
    entries = []
    for t in titles():
        number, first, second = t.split(" ")
        entries.append(f"{number} {first}\n　　{second}")
    text = "目录\n\n" + "\n".join(entries) + f"\n\n{title_line}\n\n" + body(chapters)
    split = split_chapters(text)
    assert_true_structure(split)
    assert toc_warnings(split) == [
        "skipped a table of contents of 100 entries (第一回 灵根育孕源流出 … 第一百回 径回东土)"
    ]


def test_a_list_at_the_end_is_back_matter() -> None:
    title_line, chapters = xiyouji()
    text = f"{title_line}\n\n{body(chapters)}\n\n目录\n" + "\n".join(titles()) + "\n\n（全书完）"
    split = split_chapters(text)
    assert_true_structure(split)
    back = split.chapters[-1]
    assert back.kind == "back_matter"
    assert back.text.startswith(f"目录\n{FIRST}") and back.text.endswith("（全书完）")
    assert len(toc_warnings(split)) == 1


@pytest.mark.parametrize("listed_as", ["", "目录\n", "本卷目录\n\n"])
def test_each_volume_with_its_own_list(listed_as: str) -> None:
    title_line, chapters = xiyouji()
    parts = [title_line]
    for v, volume in enumerate(VOLUMES):
        own = chapters[20 * v : 20 * v + 20]
        listing = "\n".join(c.title for c in own)
        parts.append(f"{volume}\n\n{listed_as}{listing}\n\n{body(own)}")
    split = split_chapters("\n\n".join(parts))
    chapters_found = assert_true_structure(split)
    assert split.volumes == tuple(VOLUMES)
    assert [c.volume for c in chapters_found] == [VOLUMES[n // 20] for n in range(100)]
    assert len(toc_warnings(split)) == 5
    assert {c.kind for c in split.chapters} <= {"front_matter", "chapter"}
    assert all("目录" not in c.text for c in chapters_found)  # nor a list's own title line


def test_a_list_of_volumes_and_chapters_before_the_volumes() -> None:
    """The list names the volumes too; the first real volume heading must not join the list."""
    title_line, chapters = xiyouji()
    listing, parts = [], [title_line]
    for v, volume in enumerate(VOLUMES):
        own = chapters[20 * v : 20 * v + 20]
        listing += [volume, *(c.title for c in own)]
        parts.append(f"{volume}\n\n{body(own)}")
    text = "目录\n" + "\n".join(listing) + "\n\n" + "\n\n".join(parts)
    split = split_chapters(text)
    chapters_found = assert_true_structure(split)
    assert split.volumes == tuple(VOLUMES)
    assert chapters_found[0].volume == VOLUMES[0] and chapters_found[-1].volume == VOLUMES[-1]
    assert toc_warnings(split) == [
        f"skipped a table of contents of 105 entries ({VOLUMES[0]} … {LAST})"
    ]


def test_an_english_list_with_page_numbers() -> None:
    text = decode_novel(novel_bytes(PRIDE)).text
    marker = "PRIDE AND PREJUDICE\n\nBy Jane Austen"
    entries = "\n".join(f"Chapter {n} {'.' * 30} {n * 11}" for n in range(1, 62))
    split = split_chapters(text.replace(marker, f"{marker}\n\nContents\n\n{entries}\n", 1))
    chapters = story(split)
    assert [c.number for c in chapters] == list(range(1, 62))
    assert chapters[0].text.startswith("It is a truth universally acknowledged")
    assert split.chapters[0].text.endswith(f"{entries.splitlines()[-1]}")
    assert split.warnings == ("skipped a table of contents of 61 entries (Chapter 1 … Chapter 61)",)
