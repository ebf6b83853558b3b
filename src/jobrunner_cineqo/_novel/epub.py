"""EPUB (2 and 3): the text of the spine, and the chapters the book's own navigation names.

    META-INF/container.xml   -> the package document (OPF)
    OPF manifest + spine     -> the XHTML documents in reading order (linear ones)
    navigation               -> EPUB 3 nav document (`epub:type="toc"`), else the EPUB 2 NCX

A navigation entry with entries under it is a volume (unless its title reads as a chapter:
then what is under it are sections of that chapter); a single entry holding all the others
(the book's title) is unwrapped. Entries are anchored where they point in the text; a book whose
navigation names fewer than two places, or only volumes, has its chapters found by the heading
rules instead (`Book.marks` is None). Refused: DRM (content named in `META-INF/encryption.xml`
with anything but font obfuscation), and everything `archive` refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from .archive import ArchiveLimits, BadBook, BookArchive, HostileXml, member_path, parse_xml
from .marks import Book, Mark, reads_as_chapter, reads_as_volume
from .xhtml import XHTML, Anchor, TextBuilder, mark_source, walk

if TYPE_CHECKING:
    from lxml import etree

OPF = "{http://www.idpf.org/2007/opf}"
OPS_TYPE = "{http://www.idpf.org/2007/ops}type"
NCX = "{http://www.daisy.org/z3986/2005/ncx/}"
CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
XMLENC = "{http://www.w3.org/2001/04/xmlenc#}"
_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
_CONTENT_TYPES = frozenset({"application/xhtml+xml", "text/html", "text/x-oeb1-document"})


@attrs.frozen(kw_only=True)
class _Entry:
    title: str
    path: str  # the archive member it points into
    fragment: str | None
    depth: int  # 0: a volume, 1: a chapter


@attrs.frozen(kw_only=True)
class _Package:
    path: str
    spine: tuple[str, ...]  # content documents, reading order
    nav: str | None  # EPUB 3 navigation document
    ncx: str | None  # EPUB 2 table of contents


def read_epub(
    data: bytes, limits: ArchiveLimits, on_progress: Callable[[float], None] = lambda _: None
) -> Book:
    """The text and navigation of an EPUB; `BadBook` when it cannot or must not be read."""
    archive = BookArchive.open(data, "EPUB", limits)
    package = _package(archive)
    _refuse_drm(archive, package)
    warnings: list[str] = []
    entries = _navigation(archive, package, warnings)
    anchors: dict[str, dict[str | None, list[Anchor]]] = {}
    for token, entry in enumerate(entries):
        anchors.setdefault(entry.path, {}).setdefault(entry.fragment, []).append(
            (token, entry.title)
        )
    builder, encoding = TextBuilder(), "utf-8"
    for done, path in enumerate(package.spine, 1):
        here = anchors.get(path, {})
        for start, title in here.get(None, []):
            builder.anchor(start, title)
        content = _content(archive, path, warnings)
        if content is not None:
            root, marked = content
            encoding = _encoding(root) if done == 1 else encoding
            walk(root, builder, {k: v for k, v in here.items() if k}, marked=marked)
        on_progress(done / len(package.spine))
    text = builder.text()
    if not text.strip():
        raise BadBook("this EPUB holds no text (only images, or an empty spine)")
    return Book(
        text=text,
        marks=_marks(entries, builder, len(text), warnings),
        method="navigation",
        encoding=encoding,
        warnings=tuple(warnings),
    )


def _marks(
    entries: list[_Entry], builder: TextBuilder, size: int, warnings: list[str]
) -> list[Mark] | None:
    marks = [
        Mark(
            start=builder.starts[token],
            body=min(builder.bodies[token], size),
            depth=entry.depth,
            title=entry.title,
        )
        for token, entry in enumerate(entries)
        if token in builder.starts
    ]
    if len({m.start for m in marks}) < 2:
        why = "has no navigation" if not entries else "its navigation names fewer than 2 places"
        warnings.append(f"the EPUB {why}: chapters found by the heading rules")
        return None
    if all(m.depth == 0 or reads_as_volume(m.title) for m in marks):
        warnings.append(
            "the EPUB's navigation names only volumes: chapters found by the heading rules"
        )
        return None
    return marks


def _package(archive: BookArchive) -> _Package:
    container = parse_xml(archive.read("META-INF/container.xml"), "META-INF/container.xml")
    rootfile = container.find(f".//{CONTAINER}rootfile")
    path = rootfile.get("full-path") if rootfile is not None else None
    if not path or not archive.has(path):
        raise BadBook("this EPUB names no package document in META-INF/container.xml")
    opf = parse_xml(archive.read(path), path)
    items: dict[str, tuple[str, str, str]] = {}
    for item in opf.iter(f"{OPF}item"):
        ident, href = item.get("id"), item.get("href")
        if ident and href:
            items[ident] = (
                member_path(path, href),
                (item.get("media-type") or "").lower(),
                item.get("properties") or "",
            )
    spine_el = opf.find(f"{OPF}spine")
    spine = []
    for ref in opf.iter(f"{OPF}itemref"):
        found = items.get(ref.get("idref") or "")
        if found and found[1] in _CONTENT_TYPES and ref.get("linear") != "no":
            spine.append(found[0])
    if not spine:
        raise BadBook("this EPUB's spine names no XHTML documents")
    nav = next((p for p, _, props in items.values() if "nav" in props.split()), None)
    toc = spine_el.get("toc") if spine_el is not None else None
    ncx = items[toc][0] if toc in items else None
    ncx = ncx or next((p for p, t, _ in items.values() if t == "application/x-dtbncx+xml"), None)
    return _Package(path=path, spine=tuple(dict.fromkeys(spine)), nav=nav, ncx=ncx)


def _refuse_drm(archive: BookArchive, package: _Package) -> None:
    if not archive.has("META-INF/encryption.xml"):
        return
    encryption = parse_xml(archive.read("META-INF/encryption.xml"), "META-INF/encryption.xml")
    needed = {*package.spine, package.path, package.nav, package.ncx}
    for data in encryption.iter(f"{XMLENC}EncryptedData"):
        method = data.find(f"{XMLENC}EncryptionMethod")
        algorithm = method.get("Algorithm") if method is not None else None
        reference = data.find(f".//{XMLENC}CipherReference")
        uri = reference.get("URI") if reference is not None else None
        if algorithm in _OBFUSCATION or uri is None:
            continue  # fonts obfuscated so they cannot be copied out: the text is plain
        if member_path("", uri) in needed:
            raise BadBook(
                "this EPUB is DRM-protected: its text is encrypted (META-INF/encryption.xml); "
                "upload a copy without DRM"
            )


def _navigation(archive: BookArchive, package: _Package, warnings: list[str]) -> list[_Entry]:
    tree: list[_Node] = []
    if package.nav and archive.has(package.nav):
        tree = _nav_document(parse_xml(archive.read(package.nav), package.nav), package.nav)
    if not tree and package.ncx and archive.has(package.ncx):
        tree = _ncx(parse_xml(archive.read(package.ncx), package.ncx), package.ncx)
    while len(tree) == 1 and tree[0].children and not reads_as_volume(tree[0].title):
        tree = tree[0].children  # one entry holding all the others: the book's title
    spine = set(package.spine)
    every = _flatten(tree)
    entries = [e for e in every if e.path in spine]
    if len(entries) < len(every):
        warnings.append("some navigation entries point outside the book's text; left out")
    return entries


@attrs.frozen
class _Node:
    title: str
    path: str
    fragment: str | None
    children: list[_Node]


def _flatten(tree: list[_Node]) -> list[_Entry]:
    """Entries with entries under them are volumes, unless their title reads as a chapter."""
    out: list[_Entry] = []
    for node in tree:
        if node.children and not reads_as_chapter(node.title):
            out.append(_Entry(title=node.title, path=node.path, fragment=node.fragment, depth=0))
            out.extend(_flatten(node.children))
        else:
            out.append(_Entry(title=node.title, path=node.path, fragment=node.fragment, depth=1))
    return out


def _nav_document(root: etree._Element, path: str) -> list[_Node]:
    navs = list(root.iter(f"{XHTML}nav"))
    toc = next((n for n in navs if "toc" in (n.get(OPS_TYPE) or "").split()), None)
    toc = toc if toc is not None else next(iter(navs), None)
    listing = toc.find(f"{XHTML}ol") if toc is not None else None
    return _nav_list(listing, path) if listing is not None else []


def _nav_list(listing: etree._Element, path: str) -> list[_Node]:
    nodes = []
    for item in listing.iterchildren(f"{XHTML}li"):
        link = item.find(f"{XHTML}a")
        label = link if link is not None else item.find(f"{XHTML}span")
        sub = item.find(f"{XHTML}ol")
        children = _nav_list(sub, path) if sub is not None else []
        href = link.get("href") if link is not None else None
        title = " ".join(_text(label).split()) if label is not None else ""
        if href and "://" not in href:
            target, _, fragment = href.partition("#")
            nodes.append(_Node(title, member_path(path, target), fragment or None, children))
        else:
            nodes.extend(children)  # a heading without a link: its entries stand for it
    return nodes


def _ncx(root: etree._Element, path: str) -> list[_Node]:
    nav_map = root.find(f"{NCX}navMap")
    return _nav_points(nav_map, path) if nav_map is not None else []


def _nav_points(parent: etree._Element, path: str) -> list[_Node]:
    nodes = []
    for point in parent.iterchildren(f"{NCX}navPoint"):
        text = point.find(f"{NCX}navLabel/{NCX}text")
        content = point.find(f"{NCX}content")
        src = content.get("src") if content is not None else None
        children = _nav_points(point, path)
        if src and "://" not in src:
            target, _, fragment = src.partition("#")
            title = " ".join((text.text or "").split()) if text is not None else ""
            nodes.append(_Node(title, member_path(path, target), fragment or None, children))
        else:
            nodes.extend(children)
    return nodes


def _content(
    archive: BookArchive, path: str, warnings: list[str]
) -> tuple[etree._Element, bool] | None:
    """A content document's tree, and whether its source was marked for `walk`; a broken one
    is read leniently (as reading systems do)."""
    if not archive.has(path):
        warnings.append(f"{path} is in the spine but not in the archive; left out")
        return None
    data = archive.read(path)
    marked = mark_source(data)
    try:
        return parse_xml(marked or data, path), marked is not None
    except HostileXml:
        raise
    except BadBook:
        return _lenient(data, path, warnings), False


def _lenient(data: bytes, path: str, warnings: list[str]) -> etree._Element:
    from lxml import etree, html

    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBook(f"{path} is neither XHTML nor text (encrypted?)") from None
    parser = html.HTMLParser(
        encoding="utf-8", no_network=True, remove_comments=True, remove_pis=True
    )
    try:
        root = html.document_fromstring(data, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise BadBook(f"{path} cannot be read as XHTML or HTML: {exc}") from None
    warnings.append(f"{path} is not well-formed XHTML; read as HTML")
    return root


def _text(el: etree._Element) -> str:
    return "".join(str(part) for part in el.itertext())


def _encoding(root: etree._Element) -> str:
    import codecs

    declared = root.getroottree().docinfo.encoding or "utf-8"
    try:
        return codecs.lookup(declared).name
    except LookupError:
        return declared.lower()
