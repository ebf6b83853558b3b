"""Split a novel's text into chapters: headings, volumes, tables of contents, long chapters.

The text is scanned once for lines that start like a heading (a C-speed regex anchored on "\\n");
only those few lines are looked at in Python. The result is an `Outline` of offsets into the
text; chapter bodies are sliced from it one at a time by `Outline.chapters(text)`, so a caller
that writes chapters as it goes holds the text once. `split_chapters` materialises them all.

Decisions worth knowing:
- Front matter before the first heading becomes a part of kind "front_matter" with title "".
- Project Gutenberg: the header (up to "*** START OF …") stays in the front matter; the footer
  (from "End of … Project Gutenberg" / "*** END OF …") becomes a part of kind "back_matter".
  Headings are only looked for between the two markers.
- Tables of contents are found by `toc.drop_toc`: runs of at least three headings with nothing
  (or a short note) under them, ending where the numbering restarts. Their headings are skipped;
  their text is front matter before the first chapter, back matter after the last one, and left
  out between chapters (a volume's own list of its chapters).
- Heading titles are the heading line with whitespace runs (U+3000, tabs) collapsed to one
  space and a leading "正文" dropped; a title on the next line is joined with a space.
- A volume heading (卷/部/集, Book/Part/Volume) sets `volume` on the chapters after it; it is a
  part of its own (kind "volume") only when it has text before its first chapter. A book with
  volume headings but no chapter headings has its volumes as chapters.
- Chapters over `max_chapter_chars` are cut at paragraph ends (else line, sentence, hard) into
  near-equal parts numbered by `part`. With no heading at all the text is cut the same way into
  parts of kind "part" titled "Part N", and `fallback` is True.
- Kinds: front_matter, prologue, chapter, volume, epilogue, afterword, extra (番外), part,
  back_matter. Chapter numbers that skip, repeat or go back are reported in `warnings`
  (numbering may restart at 1 in each volume).
- A book that marks its own chapters (an EPUB's navigation, a DOCX's heading styles) is cut at
  those marks instead (`outline_from_marks`, see `marks.py`), the same way from there on.
  `Outline.method` says which: heading-rules, fixed-size, or the book's own method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import attrs

from .headings import (
    _NONSPACE,
    _cut_points,
    _find_headings,
    _gutenberg_bounds,
    _has_letters,
    _Heading,
    _settle_levels,
    _trim,
)
from .marks import Mark, headings_from_marks
from .toc import TocSpan, drop_toc

__all__ = [
    "DEFAULT_MAX_CHAPTER_CHARS",
    "Chapter",
    "Outline",
    "Section",
    "Split",
    "outline_chapters",
    "outline_from_marks",
    "split_chapters",
]

ProgressCallback = Callable[[float], None]

DEFAULT_MAX_CHAPTER_CHARS = 20_000

_SCAN_SHARE = 0.8  # scanning for headings is most of the work; the rest is cutting
_MAX_WARNINGS = 50


@attrs.frozen(kw_only=True)
class Chapter:
    """One output part: a chapter, a piece of a long chapter, front or back matter."""

    index: int
    title: str
    number: int | None
    volume: str | None
    kind: str  # chapter | prologue | epilogue | afterword | extra | volume | part | front_matter…
    part: int | None
    text: str

    @property
    def chars(self) -> int:
        return len(self.text)


@attrs.frozen(kw_only=True)
class Section:
    """A chapter without its text: the body is `text[start:end]`."""

    title: str
    number: int | None
    volume: str | None
    kind: str
    part: int | None
    start: int
    end: int


@attrs.frozen(kw_only=True)
class Outline:
    """Where each chapter is, without copies of the text."""

    sections: tuple[Section, ...]
    volumes: tuple[str, ...]
    fallback: bool
    warnings: tuple[str, ...]
    method: str = "heading-rules"  # heading-rules | fixed-size | navigation | headings-style

    def chapters(self, text: str) -> Iterator[Chapter]:
        """Slice the chapters out of `text` (the text the outline was made from), one at a time."""
        for index, s in enumerate(self.sections):
            yield Chapter(
                index=index,
                title=s.title,
                number=s.number,
                volume=s.volume,
                kind=s.kind,
                part=s.part,
                text=text[s.start : s.end],
            )


@attrs.frozen(kw_only=True)
class Split:
    """All chapters of a novel, in order, with what was noticed on the way."""

    chapters: tuple[Chapter, ...]
    volumes: tuple[str, ...]
    fallback: bool
    warnings: tuple[str, ...]

    @property
    def front_matter(self) -> tuple[Chapter, ...]:
        return tuple(c for c in self.chapters if c.kind == "front_matter")

    @property
    def story(self) -> tuple[Chapter, ...]:
        """Everything but front and back matter."""
        return tuple(c for c in self.chapters if c.kind not in ("front_matter", "back_matter"))


def split_chapters(
    text: str,
    *,
    max_chapter_chars: int = DEFAULT_MAX_CHAPTER_CHARS,
    on_progress: ProgressCallback | None = None,
) -> Split:
    """Split normalised text (LF line ends, see `decode_novel`) into chapters."""
    outline = outline_chapters(text, max_chapter_chars=max_chapter_chars, on_progress=on_progress)
    return Split(
        chapters=tuple(outline.chapters(text)),
        volumes=outline.volumes,
        fallback=outline.fallback,
        warnings=outline.warnings,
    )


def outline_chapters(
    text: str,
    *,
    max_chapter_chars: int = DEFAULT_MAX_CHAPTER_CHARS,
    on_progress: ProgressCallback | None = None,
) -> Outline:
    """Find the chapters of `text` as offsets; `on_progress(fraction)` is called every ~5 %."""
    if max_chapter_chars < 100:
        raise ValueError("max_chapter_chars must be at least 100")
    progress = _Progress(on_progress)
    lo, hi = _gutenberg_bounds(text)
    heads = _find_headings(text, lo, hi, lambda f: progress(f * _SCAN_SHARE))
    heads, tocs, warnings = drop_toc(text, heads, hi)
    heads = _settle_levels(heads)
    if heads:
        sections, volumes = _sections(text, heads, hi, tocs)
        warnings += _numbering_warnings(sections)
    else:
        sections, volumes = _fallback_sections(text, lo, hi), []
        warnings.append(f"no chapter headings found: cut into parts of ≤ {max_chapter_chars} chars")
    sections = _cut_long(text, sections, max_chapter_chars, progress)
    progress(1.0)
    return Outline(
        sections=tuple(sections),
        volumes=tuple(volumes),
        fallback=not heads,
        warnings=tuple(_cap(warnings)),
        method="heading-rules" if heads else "fixed-size",
    )


def outline_from_marks(
    text: str,
    marks: list[Mark],
    *,
    method: str,
    max_chapter_chars: int = DEFAULT_MAX_CHAPTER_CHARS,
) -> Outline:
    """The chapters of `text` where the book itself marks them (`marks` is not empty)."""
    if max_chapter_chars < 100:
        raise ValueError("max_chapter_chars must be at least 100")
    _, hi = _gutenberg_bounds(text)  # a Gutenberg licence is back matter here too
    heads = [h for h in headings_from_marks(marks) if h.start < hi]
    if not heads:
        return outline_chapters(text, max_chapter_chars=max_chapter_chars)
    sections, volumes = _sections(text, heads, hi, [])
    warnings = _numbering_warnings(sections)
    sections = _cut_long(text, sections, max_chapter_chars, lambda _: None)
    return Outline(
        sections=tuple(sections),
        volumes=tuple(volumes),
        fallback=False,
        warnings=tuple(_cap(warnings)),
        method=method,
    )


def _sections(
    text: str, heads: list[_Heading], hi: int, tocs: list[TocSpan]
) -> tuple[list[Section], list[str]]:
    sections: list[Section] = []
    volumes: list[str] = []
    _add_matter(sections, text, 0, heads[0].start, "front_matter")
    volume: str | None = None
    for i, h in enumerate(heads):
        end = heads[i + 1].start if i + 1 < len(heads) else hi
        end = _before_toc(tocs, h.body, end)
        start, end = _trim(text, h.body, end)
        if h.level == 0:
            volume = h.title
            volumes.append(volume)
            if not _has_letters(text, start, end):
                continue  # the usual case: a volume heading right before its first chapter
        section = Section(
            title=h.title,
            number=h.number,
            volume=volume,
            kind="volume" if h.level == 0 else h.kind,
            part=None,
            start=start,
            end=end,
        )
        sections.append(section)
    # A table of contents after the last chapter starts the back matter.
    _add_matter(sections, text, _before_toc(tocs, heads[-1].body, hi), len(text), "back_matter")
    return sections, volumes


def _before_toc(tocs: list[TocSpan], start: int, end: int) -> int:
    """`end`, or the start of the first table of contents in text[start:end]."""
    return min((t.start for t in tocs if start <= t.start < end), default=end)


def _add_matter(sections: list[Section], text: str, start: int, end: int, kind: str) -> None:
    start, end = _trim(text, start, end)
    if _has_letters(text, start, end):
        sections.append(
            Section(title="", number=None, volume=None, kind=kind, part=None, start=start, end=end)
        )


def _fallback_sections(text: str, lo: int, hi: int) -> list[Section]:
    sections: list[Section] = []
    _add_matter(sections, text, 0, lo, "front_matter")
    start, end = _trim(text, lo, hi)
    if _NONSPACE.search(text, start, end):
        part = Section(
            title="", number=None, volume=None, kind="part", part=None, start=start, end=end
        )
        sections.append(part)
    _add_matter(sections, text, hi, len(text), "back_matter")
    return sections


def _cut_long(
    text: str, sections: list[Section], limit: int, progress: Callable[[float], None]
) -> list[Section]:
    """Cut sections longer than `limit` into parts; fallback parts are numbered Part 1, 2…"""
    out: list[Section] = []
    size, count = max(len(text), 1), 0
    for s in sections:
        progress(_SCAN_SHARE + (1 - _SCAN_SHARE) * s.start / size)
        pieces = [(s.start, s.end)]
        if s.end - s.start > limit:
            pieces = list(_cut_points(text, s.start, s.end, limit))
        for part, (start, end) in enumerate(pieces, 1):
            if s.kind == "part":
                count += 1
                out.append(
                    attrs.evolve(s, start=start, end=end, title=f"Part {count}", number=count)
                )
            else:
                numbered = part if len(pieces) > 1 else None
                out.append(attrs.evolve(s, start=start, end=end, part=numbered))
    return out


def _numbering_warnings(sections: list[Section]) -> list[str]:
    warnings: list[str] = []
    prev: int | None = None
    volume: str | None = None
    for s in sections:
        if s.kind != "chapter" or s.number is None:
            continue
        n, new_volume = s.number, s.volume != volume
        volume = s.volume
        if prev is None and n != 1:
            warnings.append(f"numbering starts at {n} ({s.title!r})")
        elif prev is not None and new_volume and n == 1:
            pass  # numbering restarts in each volume
        elif prev is not None and n == prev:
            warnings.append(f"duplicate chapter number {n} ({s.title!r})")
        elif prev is not None and n > prev + 1:
            missing = f"{prev + 1}" if n == prev + 2 else f"{prev + 1}–{n - 1}"
            warnings.append(f"gap in chapter numbers: {missing} missing before {s.title!r}")
        elif prev is not None and n < prev:
            warnings.append(f"chapter number goes back from {prev} to {n} ({s.title!r})")
        prev = n
    return warnings


def _cap(warnings: list[str]) -> list[str]:
    if len(warnings) <= _MAX_WARNINGS:
        return warnings
    extra = len(warnings) - _MAX_WARNINGS
    return [*warnings[:_MAX_WARNINGS], f"… and {extra} more warnings"]


@attrs.define
class _Progress:
    """Calls the callback when the fraction has grown by 5 % since the last call, and at 1.0."""

    callback: ProgressCallback | None
    last: float = 0.0

    def __call__(self, fraction: float) -> None:
        if self.callback is None:
            return
        if (fraction >= 1.0 > self.last) or fraction >= self.last + 0.05:
            self.last = min(fraction, 1.0)
            self.callback(self.last)


# --- heading recognition -------------------------------------------------------------------------
