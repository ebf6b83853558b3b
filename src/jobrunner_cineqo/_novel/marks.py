"""Chapter marks a book gives itself — an EPUB's navigation, a DOCX's heading styles — turned
into the headings `chapters.py` cuts a text at (pure).

A mark is where a titled part starts in the extracted text, how deep it sits (0: a volume
above chapters, 1: a chapter) and its title. The title is read with the same rules as a
heading line in a text file: "第一回 …", "Chapter IV", "楔子", "Epilogue" give the number and
the kind; "第一卷", "Part Two" make it a volume. A title the rules do not know ("Cover",
"版权信息", "The Beginning") is a chapter — or, before the first title they know, front
matter, and after the last one, back matter (title pages, copyright, "about the author").
"""

from __future__ import annotations

import re

import attrs

from .headings import _classify, _Heading

_LEADING_NUMBER = re.compile(r"(\d{1,5})(?:[.:、．\s]|$)")


@attrs.frozen(kw_only=True)
class Book:
    """An EPUB's or DOCX's text and, when it marks its own chapters, where they are."""

    text: str
    marks: list[Mark] | None  # None: find the chapters with the heading rules
    method: str  # how the marks were found: navigation | headings-style
    encoding: str
    warnings: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Mark:
    """A titled part of a book: it starts at `start`, its text at `body`."""

    start: int
    body: int
    depth: int  # 0: a volume (a part with parts under it), 1: a chapter
    title: str


def reads_as_chapter(title: str) -> bool:
    """ "第一章 …", "Chapter 4", "楔子": a title the heading rules read as chapter level."""
    parsed = _classify(" ".join(title.split()))
    return parsed is not None and parsed.level == 1


def reads_as_volume(title: str) -> bool:
    """ "第一卷 …", "Part Two": a title the heading rules read as a volume."""
    parsed = _classify(" ".join(title.split()))
    return parsed is not None and parsed.level == 0


def headings_from_marks(marks: list[Mark]) -> list[_Heading]:
    """The marks as headings, in text order, one per place."""
    heads = [_heading(mark) for mark in sorted(marks, key=lambda m: (m.start, m.depth))]
    known = [i for i, (_, k) in enumerate(heads) if k]
    out: list[_Heading] = []
    for i, (head, _) in enumerate(heads):
        if known and i < known[0] and head.kind == "chapter":
            head = attrs.evolve(head, kind="front_matter", number=None)
        elif known and i > known[-1] and head.kind == "chapter":
            head = attrs.evolve(head, kind="back_matter", number=None)
        if out and out[-1].start == head.start and out[-1].level == head.level:
            continue  # two entries for one place: the first one names it
        out.append(head)
    return out


def _heading(mark: Mark) -> tuple[_Heading, bool]:
    """The heading for a mark, and whether its title read as a heading."""
    title = " ".join(mark.title.split())
    parsed = _classify(title) if title else None
    if parsed is not None:
        level = min(parsed.level, mark.depth)  # "第一卷" as a chapter-level entry is a volume
        kind = "volume" if level == 0 else parsed.kind
        head = _Heading(
            start=mark.start,
            body=mark.body,
            level=level,
            kind=kind,
            number=parsed.number,
            title=title,
            unit=parsed.unit,
        )
        return head, True
    number = _LEADING_NUMBER.match(title)
    head = _Heading(
        start=mark.start,
        body=mark.body,
        level=mark.depth,
        kind="volume" if mark.depth == 0 else "chapter",
        number=int(number[1]) if number else None,
        title=title,
        unit="mark",
    )
    return head, False
