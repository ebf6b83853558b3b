"""A novel's bytes in, its text and chapters out, whatever the format (pure).

The format is told from the bytes (`archive.sniff_book`), never from a file name:

    text   decode (`decode`), then the heading rules (`chapters.outline_chapters`)
    epub   the spine's text (`epub`); chapters from the book's navigation
    docx   the document's text (`docx`); chapters from its heading styles

An EPUB or DOCX that marks no usable chapters gets the heading rules on its text, like a text
file. `Novel.format` says which format it was, `Novel.outline.method` how the chapters were
found (navigation, headings-style, heading-rules, fixed-size).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .archive import ArchiveLimits, BadBook, sniff_book
from .chapters import DEFAULT_MAX_CHAPTER_CHARS, Chapter, Outline, outline_chapters
from .chapters import outline_from_marks as _outline_from_marks
from .decode import EmptyText, NotText, UndecodableText, decode_novel
from .docx import read_docx
from .epub import read_epub

__all__ = ["BAD_NOVEL", "Novel", "load_novel"]

# What a novel that cannot be read raises: the message says why, for the user.
BAD_NOVEL = (NotText, EmptyText, UndecodableText, BadBook)
_READ_SHARE = 0.8  # progress: reading an archive is most of the work; outlining the rest


@attrs.frozen(kw_only=True)
class Novel:
    """A decoded novel and where its chapters are (offsets into `text`)."""

    text: str
    encoding: str | None  # None for inline text
    method: str  # how the text was decoded: bom | utf-8 | … | xml (EPUB, DOCX) | text (inline)
    format: str  # text | epub | docx
    outline: Outline
    warnings: tuple[str, ...]

    def chapters(self) -> list[Chapter]:
        return list(self.outline.chapters(self.text))


def load_novel(
    data: bytes,
    *,
    encoding: str | None = None,
    inline: bool = False,
    max_chapter_chars: int = DEFAULT_MAX_CHAPTER_CHARS,
    max_novel_bytes: int = 50 * 1024 * 1024,
    on_progress: Callable[[float], None] | None = None,
) -> Novel:
    """Read a novel file (or inline text, `inline=True`); one of `BAD_NOVEL` if it cannot be."""
    report = on_progress or (lambda _: None)
    kind = None if inline else sniff_book(data)
    if kind is None:
        decoded = decode_novel(data, encoding=encoding)
        outline = outline_chapters(
            decoded.text, max_chapter_chars=max_chapter_chars, on_progress=on_progress
        )
        return Novel(
            text=decoded.text,
            encoding=None if inline else decoded.encoding,
            method="text" if inline else decoded.method,
            format="text",
            outline=outline,
            warnings=(*decoded.warnings, *outline.warnings),
        )
    limits = ArchiveLimits.for_novels(max_novel_bytes)
    read = read_epub if kind == "epub" else read_docx
    book = read(data, limits, lambda fraction: report(fraction * _READ_SHARE))
    if book.marks:
        outline = _outline_from_marks(
            book.text, book.marks, method=book.method, max_chapter_chars=max_chapter_chars
        )
    else:
        outline = outline_chapters(
            book.text,
            max_chapter_chars=max_chapter_chars,
            on_progress=lambda f: report(_READ_SHARE + (1 - _READ_SHARE) * f),
        )
    report(1.0)
    ignored = (f"'encoding' applies to plain-text files; ignored for this {kind.upper()}",)
    return Novel(
        text=book.text,
        encoding=book.encoding,
        method="xml",
        format=kind,
        outline=outline,
        warnings=(*(ignored if encoding else ()), *book.warnings, *outline.warnings),
    )
