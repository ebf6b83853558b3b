"""The text of XHTML documents (an EPUB's chapters), paragraphs apart by a blank line (pure).

Block elements (p, div, h1–h6, li, …) end a paragraph, `<br>` a line; whitespace inside a line
collapses to single spaces, as a browser shows it. Dropped: scripts, styles, the document head,
images and other media, ruby annotations, and footnote markers (`epub:type="noteref"`,
`role="doc-noteref"`, a `<sup>` holding a link, a link reading "[1]" or "*"); the footnotes
themselves stay. HTML entities kept unexpanded by the parser (`&nbsp;` under an XHTML doctype)
become their characters.

`TextBuilder` collects the lines of many documents into one text and records where anchors —
chapter starts named by the book's navigation — fall: an anchor starts at the next line, and
its body after the heading lines that follow it (h1–h6, or lines that are part of its title).
"""

from __future__ import annotations

import html.entities
import io
import re
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from lxml import etree

XHTML = "{http://www.w3.org/1999/xhtml}"
OPS_TYPE = "{http://www.idpf.org/2007/ops}type"
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = _HEADINGS | frozenset({
    "p", "div", "li", "blockquote", "pre", "section", "article", "header", "footer", "aside",
    "nav", "figure", "figcaption", "table", "tr", "td", "th", "dt", "dd", "dl", "ul", "ol", "hr",
    "address", "center", "main", "body", "html", "caption", "tbody", "thead", "tfoot", "br",
})  # fmt: skip
_SKIPPED = frozenset({
    "head", "title", "script", "style", "noscript", "template", "svg", "math", "img", "image",
    "audio", "video", "object", "embed", "iframe", "canvas", "button", "input", "select",
    "textarea", "rt", "rp",
})  # fmt: skip
_MARKER = re.compile(r"[\[(（【]?(?:\d{1,3}|[*†‡]+|注\d{0,3})[\])）】]?")
_LOOKAHEAD = 3  # lines after an anchor that may still be its heading
_ENTITIES = html.entities.html5

Anchor = tuple[Hashable, str]  # (token, title)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2].lower()


@attrs.define
class TextBuilder:
    """Lines of many documents as one text, and where anchors fall in it."""

    starts: dict[Hashable, int] = attrs.field(factory=dict)
    bodies: dict[Hashable, int] = attrs.field(factory=dict)
    size: int = 0
    # Lines go straight into one buffer (no list of pieces); taking the text out copies it
    # once, so the peak is about twice the text.
    _out: io.StringIO = attrs.field(factory=io.StringIO)
    _pending: list[Anchor] = attrs.field(factory=list)
    _open: list[Anchor] = attrs.field(factory=list)
    _looked: int = 0
    soft: bool = False  # the next line continues a paragraph (after a <br>)

    def anchor(self, token: Hashable, title: str) -> None:
        """`token` starts at the next line."""
        self._pending.append((token, title))

    def line(self, text: str, heading: bool) -> None:
        """Add a line: a paragraph of its own, or the next line of one after a `<br>`."""
        if self.size:
            separator = "\n" if self.soft else "\n\n"
            self._out.write(separator)
            self.size += len(separator)
        self.soft = False
        start = self.size
        self._out.write(text)
        self.size += len(text)
        if self._pending:
            for token, _ in self._pending:
                self.starts[token] = self.bodies[token] = start
            self._open, self._pending, self._looked = self._pending, [], 0
        if not self._open:
            return
        if self._looked < _LOOKAHEAD and (heading or _in_title(text, self._open)):
            for token, _ in self._open:
                self.bodies[token] = self.size  # after this line
            self._looked += 1
        else:
            self._open = []

    def paragraphs(self, lines: list[str]) -> None:
        """Add whole paragraphs (line breaks inside them already "\\n"), without looking at
        them once no anchor is waiting for its heading lines (`lines` is emptied)."""
        i = 0
        while i < len(lines) and (self._pending or self._open):
            self.soft = False
            self.line(lines[i], False)
            i += 1
        self.soft = False
        if i < len(lines):
            if i:
                del lines[:i]
            body = "\n\n".join(lines)  # the rest as one string: no Python per paragraph
            lines.clear()
            if self.size:
                self._out.write("\n\n")
                self.size += 2
            self._out.write(body)
            self.size += len(body)

    def text(self) -> str:
        """All the text added (call once)."""
        text = self._out.getvalue()
        self._out.close()
        return text


def _in_title(text: str, anchors: Sequence[Anchor]) -> bool:
    """The line is (a piece of) an anchor's title: "灵根育孕源流出" of "第一回 灵根育孕源流出"."""
    squeezed = "".join(text.split())
    return any(squeezed and squeezed in "".join(title.split()) for _, title in anchors)


def mark_source(data: bytes) -> bytes | None:
    """A UTF-8 document's bytes with paragraph, heading and line-break markers before its
    tags (so `walk` need not add them to the tree), or None when it is not UTF-8 or names
    its tags with a prefix (then `walk` marks the tree).

    Markers are text between tags: nothing an XML parser could read differently.
    """
    head = data[:200]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    declared = _DECLARED.match(head)
    if declared and declared[1].lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        return None
    data, blocks = _BLOCK_TAG.subn(_SEP_BYTES + b"<", data)
    if not blocks:
        return None
    if b"<h" in data:
        data = _HEADING_START.sub(_HEADING_BYTES + b"<", data)  # after the first pass's mark
    if b"<br" in data:
        data = _BR_START.sub(_BREAK_BYTES + b"<", data)
    return data


def walk(
    root: etree._Element,
    builder: TextBuilder,
    anchors: Mapping[str, list[Anchor]],
    *,
    marked: bool = False,
) -> None:
    """Add the text of the document `root` to `builder`; `anchors` are keyed by element id.

    The tree is prepared in lxml's C code — dropped elements stripped, block boundaries, line
    breaks and anchors marked with Unicode noncharacters (already in the source when `marked`,
    see `mark_source`) — and its text taken in one call; Python then only sees one string per
    paragraph.
    """
    from lxml import etree

    groups = _prepare(root, anchors, marked)
    text = etree.tostring(root, method="text", encoding="unicode", with_tail=False)
    # Anchors and headings are near a document's start: lines up to the last of them one by
    # one, the plain paragraphs after it in one go.
    last = max(text.rfind(_ANCHOR), text.rfind(_HEADING))
    cut = text.find(_SEP, last) if last >= 0 else 0
    cut = len(text) if cut < 0 else cut
    messy = _messy(text, cut)
    pieces = text.split(_SEP)  # one split, and no copy of the text after the cut
    head = text.count(_SEP, 0, cut) + 1  # the pieces before the cut
    del text
    for piece in pieces[:head]:
        if piece.startswith(_ANCHOR):
            for token, title in groups[int(piece.strip(_ANCHOR))]:
                builder.anchor(token, title)
            continue
        heading = piece.startswith(_HEADING)
        builder.soft = False
        for line in piece.removeprefix(_HEADING).split(_BREAK):
            line = _collapse(line)
            if line:
                builder.line(line, heading)
                builder.soft = True
    del pieces[:head]
    builder.paragraphs(_paragraphs(pieces, messy))


def _collapse(line: str) -> str:
    """Whitespace runs as one space, none at the ends; most lines need only the strip."""
    line = line.strip()
    if "\n" in line or "  " in line or "\t" in line or "\r" in line:
        return " ".join(line.split())
    return line


def _messy(text: str, start: int) -> bool:
    """Whether text[start:] has whitespace to collapse, or `<br>`s (a few scans tell)."""
    for needle in ("  ", "\t", "\r", _BREAK):
        if text.find(needle, start) >= 0:
            return True
    # line ends inside paragraphs, not only between them
    return text.count("\n", start) > text.count(f"{_SEP}\n{_SEP}", start) + 1


def _paragraphs(pieces: list[str], messy: bool) -> list[str]:
    """The paragraphs of marked text split at its separators (`pieces`, emptied): whitespace
    runs collapsed, a `<br>` a line end.

    Only the strip is done per paragraph when the text has no whitespace to collapse
    (`_messy` tells), which is most books.
    """
    clean = _paragraph if messy else str.strip
    paragraphs = [paragraph for paragraph in map(clean, pieces) if paragraph]
    pieces.clear()
    return paragraphs


def _paragraph(piece: str) -> str:
    """A paragraph's text: whitespace collapsed, a `<br>` inside it a line end."""
    if _BREAK not in piece:
        return _collapse(piece)
    lines = (_collapse(line) for line in piece.split(_BREAK))
    return "\n".join(line for line in lines if line)


def _prepare(
    root: etree._Element, anchors: Mapping[str, list[Anchor]], marked: bool
) -> list[list[Anchor]]:
    """Drop what is not text and mark paragraphs, line breaks and anchors; the anchor groups."""
    from lxml import etree

    etree.strip_elements(root, *_SKIPPED_TAGS, with_tail=False)
    for marker in _noterefs(root):
        _replace(marker, "")
    for entity in list(root.iter(etree.Entity)):
        _replace(entity, _ENTITIES.get(str(entity.text).strip("&;") + ";", ""))
    if not marked:
        for block in root.iter(*_BLOCK_TAGS):
            _mark_block(block)
        for br in root.iter(*_BR_TAGS):
            br.tail = _BREAK + (br.tail or "")
    groups: list[list[Anchor]] = []
    for ident, group in anchors.items():
        found = root.xpath("//*[@id=$i or @name=$i]", i=ident)
        if isinstance(found, list) and found and isinstance(found[0], etree._Element):
            groups.append(group)
            target = found[0]
            target.text = f"{_SEP}{_ANCHOR}{len(groups) - 1}{_ANCHOR}{_SEP}{target.text or ''}"
    return groups


# Markers: Unicode noncharacters, reserved for a program's own use and never in a book's text.
_SEP, _HEADING, _ANCHOR, _BREAK = "\ufdd0", "\ufdd1", "\ufdd2", "\ufdd3"
_HEAD = _SEP + _HEADING
_SEP_BYTES, _HEADING_BYTES, _BREAK_BYTES = (m.encode() for m in (_SEP, _HEADING, _BREAK))
_SOURCE_BLOCKS = b"|".join(
    name.encode() for name in sorted(_BLOCKS - _HEADINGS - {"br", "html", "body"})
)
# Each matches the "<" and looks ahead for the rest, so its replacement is a constant: the
# substitution runs in C, with no Python call per match.
_BLOCK_TAG = re.compile(rb"<(?=/?(?:" + _SOURCE_BLOCKS + rb"|h[1-6])[\s/>])")
_HEADING_START = re.compile(rb"<(?=h[1-6][\s/>])")
_BR_START = re.compile(rb"<(?=br[\s/>])")
_DECLARED = re.compile(rb"(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding=[\"']([\w.-]+)")


def _mark_block(block: etree._Element) -> None:
    """A separator where the block starts and after it ends; a heading's start says so.

    Markers go into the short strings around a paragraph (whitespace between tags), not into
    its text, which lxml would copy twice per paragraph to change.
    """
    block.tail = _SEP + (block.tail or "")
    if _local(block.tag) in _HEADINGS:
        block.text = _HEAD + (block.text or "")
        return
    before = block.getprevious()
    if before is None:
        parent = block.getparent()
        if parent is not None:
            parent.text = (parent.text or "") + _SEP
    elif not isinstance(before.tag, str) or _local(before.tag) not in _BLOCKS:
        before.tail = (before.tail or "") + _SEP  # inline text, then a block: a new line


def _tags(names: frozenset[str]) -> tuple[str, ...]:
    """Each name in the XHTML namespace and without one (HTML read leniently has none)."""
    return (*(XHTML + name for name in sorted(names)), *sorted(names))


_SKIPPED_TAGS = _tags(_SKIPPED)
_BLOCK_TAGS = _tags(_BLOCKS - {"br"})
_BR_TAGS = _tags(frozenset({"br"}))
_MARKER_TAGS = _tags(frozenset({"a", "sup", "span"}))


def _noterefs(root: etree._Element) -> list[etree._Element]:
    """Footnote markers: "[1]" pointing to a note, not text of its own."""
    return [el for el in root.iter(*_MARKER_TAGS) if _is_noteref(el, _local(str(el.tag)))]


def _replace(node: etree._Element, text: str) -> None:
    """Remove `node` from the tree; `text` and its tail go where it was."""
    parent = node.getparent()
    if parent is None:
        return
    text += node.tail or ""
    previous = node.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + text
    else:
        parent.text = (parent.text or "") + text
    parent.remove(node)


def _is_noteref(el: etree._Element, name: str) -> bool:
    """A footnote marker: "[1]" pointing to a note, not text of its own."""
    if name not in ("a", "sup", "span"):
        return False
    if "noteref" in (el.get(OPS_TYPE) or "") or el.get("role") == "doc-noteref":
        return True
    if name == "span":
        return False
    text = "".join(str(part) for part in el.itertext()).strip()
    if name == "sup":
        return len(text) <= 6 and el.find(".//{*}a") is not None
    return el.get("href") is not None and _MARKER.fullmatch(text) is not None
