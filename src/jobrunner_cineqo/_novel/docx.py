"""Word documents (.docx): the text of the main document, and chapters from its heading styles.

The main part (`word/document.xml`, as `[Content_Types].xml` names it) is streamed paragraph by
paragraph, so a large manuscript is never a whole tree in memory. Paragraphs are apart by a
blank line; a line break inside one starts a new line. Text in text boxes, deleted text and
field codes are left out.

A paragraph is a heading when its style is one (`Heading 1`, `heading 2`, `标题 1`, …, or a
style with `w:outlineLvl`, directly or through `w:basedOn`) or it carries `w:outlineLvl`
itself. The two highest levels in use are volumes and chapters (one level: chapters); deeper
ones stay text. A lone top-level heading before all the others is the book's title, not a
volume. Fewer than two headings: the chapters are found by the heading rules on the text.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from .archive import DOCX_MAIN, ArchiveLimits, BadBook, BookArchive, parse_xml, safe_iterparse
from .marks import Book, Mark

if TYPE_CHECKING:
    from lxml import etree

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
CONTENT_TYPES = "{http://schemas.openxmlformats.org/package/2006/content-types}"
STYLES = "application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"
_HEADING_NAME = re.compile(
    r"(?:heading|标题|標題|überschrift|titre|título|titolo|kop|заголовок) ?([1-9])", re.I
)
_W_T = f"{W}t"
_BREAK_TAGS = (f"{W}tab", f"{W}br", f"{W}cr")
_BODY_LEVEL = 9  # w:outlineLvl 9 is body text
_PROGRESS_EVERY = 500  # paragraphs


@attrs.frozen
class _Style:
    name: str
    based_on: str | None
    outline: int | None


def read_docx(
    data: bytes, limits: ArchiveLimits, on_progress: Callable[[float], None] = lambda _: None
) -> Book:
    """The text and heading marks of a Word document; `BadBook` when it cannot be read."""
    archive = BookArchive.open(data, "DOCX", limits)
    main, styles_part = _parts(archive)
    if main is None or not archive.has(main):
        raise BadBook("this Word document has no word/document.xml: it holds no text")
    levels = _heading_levels(archive, styles_part)
    out = io.StringIO()  # lines straight into one buffer, not a list of pieces
    headings: list[tuple[int, int, int, str]] = []  # start, end, level, text
    size = 0
    stream = archive.stream(main)
    total = max(archive.members[main].file_size, 1)
    for count, (_, p) in enumerate(safe_iterparse(stream, main, f"{W}p"), 1):
        if _in_text_box(p):
            continue  # cleared with its box by the paragraph holding it
        for box in list(p.iter(f"{W}txbxContent")):
            box.clear()  # text boxes are decoration (and come twice, for old and new Word)
        text, level = _paragraph(p, levels)
        _forget(p)
        separator = "\n\n"  # paragraphs apart by a blank line, lines in one by a line end
        for line in _lines(text):
            if size:
                out.write(separator)
                size += len(separator)
            separator = "\n"
            if level is not None:
                headings.append((size, size + len(line), level, line))
                level = None  # a heading's second line is text
            out.write(line)
            size += len(line)
        if count % _PROGRESS_EVERY == 0:
            on_progress(min(stream.seen / total, 1.0))
    text = out.getvalue()
    out.close()
    if not text.strip():
        raise BadBook("this Word document holds no text")
    return Book(
        text=text,
        marks=_marks(headings, len(text)),
        method="headings-style",
        encoding="utf-8",
        warnings=() if headings else ("no heading styles: chapters found by the heading rules",),
    )


def _parts(archive: BookArchive) -> tuple[str | None, str | None]:
    """The main document part and the styles part, as `[Content_Types].xml` names them."""
    types = parse_xml(archive.read("[Content_Types].xml"), "[Content_Types].xml")
    parts = {
        (o.get("ContentType") or ""): (o.get("PartName") or "").lstrip("/")
        for o in types.iter(f"{CONTENT_TYPES}Override")
    }
    return parts.get(DOCX_MAIN), parts.get(STYLES, "word/styles.xml")


def _heading_levels(archive: BookArchive, part: str | None) -> dict[str, int]:
    """Style id → outline level (0 for Heading 1), for the paragraph styles that are headings."""
    if part is None or not archive.has(part):
        return {}
    root = parse_xml(archive.read(part), part)
    styles: dict[str, _Style] = {}
    for style in root.iter(f"{W}style"):
        ident = style.get(f"{W}styleId")
        if ident is None or style.get(f"{W}type", "paragraph") != "paragraph":
            continue
        name = _val(style.find(f"{W}name")) or ""
        based_on = _val(style.find(f"{W}basedOn"))
        styles[ident] = _Style(name, based_on, _outline(style.find(f"{W}pPr")))
    levels = {}
    for ident in styles:
        level = _style_level(ident, styles)
        if level is not None:
            levels[ident] = level
    return levels


def _style_level(ident: str, styles: dict[str, _Style]) -> int | None:
    seen: set[str] = set()
    current: str | None = ident
    while current is not None and current in styles and current not in seen:
        seen.add(current)
        style = styles[current]
        if style.outline is not None:
            return style.outline if style.outline < _BODY_LEVEL else None
        if m := _HEADING_NAME.fullmatch(style.name.strip()) or _HEADING_NAME.fullmatch(current):
            return int(m[1]) - 1
        current = style.based_on
    return None


def _paragraph(p: etree._Element, levels: dict[str, int]) -> tuple[str, int | None]:
    """The paragraph's text and its heading level, if it is a heading."""
    level = None
    ppr = p.find(f"{W}pPr")
    if ppr is not None:
        direct = _outline(ppr)
        if direct is not None:
            level = direct if direct < _BODY_LEVEL else None
        else:
            level = levels.get(_val(ppr.find(f"{W}pStyle")) or "")
    if next(p.iter(*_BREAK_TAGS), None) is None:  # most paragraphs: their runs' text alone
        return "".join(str(text) for text in p.itertext(_W_T, with_tail=False)), level
    pieces = []
    for el in p.iter(_W_T, *_BREAK_TAGS):
        if el.tag == _W_T:
            pieces.append(el.text or "")
        else:
            pieces.append("\t" if el.tag == f"{W}tab" else "\n")
    return "".join(pieces), level


def _lines(text: str) -> list[str]:
    """A paragraph's lines, whitespace runs collapsed (only split when there is any)."""
    if "\n" not in text and "  " not in text and "\t" not in text:
        text = text.strip()
        return [text] if text else []
    return [line for line in (" ".join(piece.split()) for piece in text.split("\n")) if line]


def _in_text_box(p: etree._Element) -> bool:
    parent = p.getparent()
    while parent is not None:
        if parent.tag == f"{W}txbxContent":
            return True
        if parent.tag == f"{W}body":
            return False
        parent = parent.getparent()
    return False


def _forget(p: etree._Element) -> None:
    """Free a paragraph once read, and the siblings before it (a streaming read)."""
    parent = p.getparent()
    p.clear()
    if parent is not None:
        while p.getprevious() is not None:
            del parent[0]


def _marks(headings: list[tuple[int, int, int, str]], size: int) -> list[Mark] | None:
    """The two highest heading levels in use as volumes and chapters."""
    used = sorted({level for _, _, level, _ in headings})[:2]
    tops = [h for h in headings if h[2] == used[0]] if used else []
    if len(used) == 2 and len(tops) == 1 and headings[0] is tops[0]:
        headings, used = headings[1:], used[1:]  # the book's title above its chapters
    depth = {used[0]: 0, used[1]: 1} if len(used) == 2 else dict.fromkeys(used, 1)
    marks = [
        Mark(start=start, body=end, depth=depth[level], title=title)
        for start, end, level, title in headings
        if level in depth
    ]
    return marks if len(marks) >= 2 else None


def _outline(ppr: etree._Element | None) -> int | None:
    value = _val(ppr.find(f"{W}outlineLvl")) if ppr is not None else None
    return int(value) if value is not None and value.isdigit() else None


def _val(el: etree._Element | None) -> str | None:
    return el.get(f"{W}val") if el is not None else None
