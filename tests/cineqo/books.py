"""EPUB and DOCX files made from a novel's text, as publishers, web-novel sites and Word write them.

`parts_of(text)` cuts a text into the parts a book would have (front matter, titled chapters,
volumes) with the plugin's own splitter; `epub(parts)` packs them as an EPUB 3 with a nav
document (or `version=2`, an EPUB 2 with an NCX, or `navigation=False`, none), `docx(parts)` as
a Word document with heading styles (raw WordprocessingML, styled three ways), and
`python_docx(parts)` with python-docx on Word's own default template. `zip_of(members)` writes
any archive, for hostile ones.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from html import escape

import attrs

from jobrunner_cineqo._novel.chapters import split_chapters

XHTML_DOCTYPE = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
    '"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">'
)


@attrs.frozen(kw_only=True)
class Part:
    """One document of a book: a titled chapter (title "" for front or back matter)."""

    title: str
    text: str
    volume: str | None = None
    kind: str = "chapter"  # "volume": a volume's own text, titled with the volume


def parts_of(text: str) -> list[Part]:
    """The novel's parts, uncut: one per chapter, front and back matter untitled."""
    split = split_chapters(text, max_chapter_chars=10**9)
    return [Part(title=c.title, text=c.text, volume=c.volume, kind=c.kind) for c in split.chapters]


def paragraphs(text: str) -> list[str]:
    """Blocks between blank lines, their lines joined: how a book holds a text's paragraphs
    (a text without blank lines, such as 儒林外史, has one paragraph per line)."""
    blocks = re.split(r"\n[ \t\u3000]*\n", text)
    if len(blocks) == 1:
        blocks = text.splitlines()
    return [" ".join(line.strip() for line in b.splitlines()) for b in blocks if b.strip()]


def zip_of(members: Iterable[tuple[str, bytes | str]], *, stored: Sequence[str] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            method = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=method)
    return buffer.getvalue()


# --- EPUB ------------------------------------------------------------------------------------


def xhtml(title: str, paras: Iterable[str], *, heading: str = "h2", doctype: bool = True) -> str:
    head = f"<{heading}>{escape(title)}</{heading}>\n" if title else ""
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paras)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        + (XHTML_DOCTYPE + "\n" if doctype else "")
        + '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        + f"<head><title>{escape(title)}</title><style>p {{ text-indent: 2em }}</style></head>"
        + f"<body>{head}{body}</body></html>"
    )


def container(opf: str = "OEBPS/content.opf") -> str:
    return (
        '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        f'<rootfile full-path="{opf}" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )


def _nav_tree(parts: Sequence[Part]) -> list[tuple[int, Part, list[tuple[int, Part]]]]:
    """Titled parts, grouped under their volumes: (index, part, [(index, child)])."""
    tree: list[tuple[int, Part, list[tuple[int, Part]]]] = []
    current: str | None = None
    for i, part in enumerate(parts):
        if not part.title:
            continue
        if part.volume and part.volume != current:
            current = part.volume
            tree.append((i, Part(title=part.volume, text=""), []))
            if part.kind == "volume":
                continue  # the volume's own document: its entry points there
        if part.volume:
            tree[-1][2].append((i, part))
        else:
            current = None
            tree.append((i, part, []))
    return tree


def nav_document(parts: Sequence[Part]) -> str:
    def item(i: int, part: Part, children: list[tuple[int, Part]]) -> str:
        sub = "".join(item(j, child, []) for j, child in children)
        nested = f"<ol>{sub}</ol>" if sub else ""
        return f'<li><a href="text/c{i:04d}.xhtml">{escape(part.title)}</a>{nested}</li>'

    entries = "".join(item(i, part, children) for i, part, children in _nav_tree(parts))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" '
        'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>目录</title></head><body>'
        '<nav epub:type="landmarks"><ol><li><a href="text/c0000.xhtml">Start</a></li></ol></nav>'
        f'<nav epub:type="toc" id="toc"><h1>目录</h1><ol>{entries}</ol></nav></body></html>'
    )


def ncx(parts: Sequence[Part]) -> str:
    order = iter(range(1, 10**6))

    def point(i: int, part: Part, children: list[tuple[int, Part]]) -> str:
        sub = "".join(point(j, child, []) for j, child in children)
        return (
            f'<navPoint id="p{i}" playOrder="{next(order)}"><navLabel><text>'
            f'{escape(part.title)}</text></navLabel><content src="text/c{i:04d}.xhtml"/>'
            f"{sub}</navPoint>"
        )

    points = "".join(point(i, part, children) for i, part, children in _nav_tree(parts))
    return (
        '<?xml version="1.0" encoding="utf-8"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/"'
        ' version="2005-1"><head><meta name="dtb:uid" content="test"/></head>'
        f"<docTitle><text>test</text></docTitle><navMap>{points}</navMap></ncx>"
    )


def epub(
    parts: Sequence[Part],
    *,
    version: int = 3,
    navigation: bool = True,
    extra: Iterable[tuple[str, bytes | str]] = (),
    documents: dict[int, str | bytes] | None = None,
) -> bytes:
    """An EPUB of `parts`, one XHTML document each (`documents` replaces some by index)."""
    documents = documents or {}
    items = [
        f'<item id="c{i:04d}" href="text/c{i:04d}.xhtml" media-type="application/xhtml+xml"/>'
        for i in range(len(parts))
    ]
    items.append('<item id="cover" href="images/cover.png" media-type="image/png"/>')
    members: list[tuple[str, bytes | str]] = [
        ("mimetype", "application/epub+zip"),
        ("META-INF/container.xml", container()),
    ]
    spine_toc = ""
    if navigation and version == 3:
        items.append(
            '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        )
        members.append(("OEBPS/nav.xhtml", nav_document(parts)))
    elif navigation:
        items.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
        members.append(("OEBPS/toc.ncx", ncx(parts)))
        spine_toc = ' toc="ncx"'
    spine = "".join(f'<itemref idref="c{i:04d}"/>' for i in range(len(parts)))
    opf = (
        f'<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" '
        f'version="{version}.0" unique-identifier="id"><metadata '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">test</dc:identifier>'
        "<dc:title>test</dc:title><dc:language>zh</dc:language></metadata>"
        f"<manifest>{''.join(items)}</manifest><spine{spine_toc}>{spine}</spine></package>"
    )
    members.append(("OEBPS/content.opf", opf))
    for i, part in enumerate(parts):
        doc = documents.get(i) or xhtml(part.title, paragraphs(part.text), doctype=version == 2)
        members.append((f"OEBPS/text/c{i:04d}.xhtml", doc))
    members.append(("OEBPS/images/cover.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64))
    members.extend(extra)
    return zip_of(members, stored=("mimetype",))


# --- DOCX ------------------------------------------------------------------------------------

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
    '+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.styles+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxml'
    'formats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)
# How the heading styles are spelt: Word's English names, a Chinese Word's (style ids "1",
# "2"), and styles that are headings only by their outline level, based on another style.
STYLE_SETS = {
    "word": (("Heading1", "heading 1", ""), ("Heading2", "heading 2", "")),
    "chinese": (("1", "标题 1", ""), ("2", "标题 2", "")),
    "outline": (("ChapterTitle", "Chapter Title", "0"), ("SceneTitle", "Scene Title", "1")),
}


def styles_xml(style_set: str) -> str:
    styles = [
        '<w:style w:type="paragraph" w:default="1" w:styleId="Normal">'
        '<w:name w:val="Normal"/></w:style>'
    ]
    for ident, name, outline in STYLE_SETS[style_set]:
        level = f'<w:pPr><w:outlineLvl w:val="{outline}"/></w:pPr>' if outline else ""
        styles.append(
            f'<w:style w:type="paragraph" w:styleId="{ident}"><w:name w:val="{name}"/>'
            f'<w:basedOn w:val="Normal"/>{level}</w:style>'
        )
    return f'<?xml version="1.0"?><w:styles xmlns:w="{W_NS}">{"".join(styles)}</w:styles>'


def w_paragraph(text: str, style: str | None = None) -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f'<w:p>{props}<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'


def document_xml(body: Iterable[str]) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W_NS}">'
        f"<w:body>{''.join(body)}<w:sectPr/></w:body></w:document>"
    )


def docx_body(parts: Sequence[Part], style_set: str = "word") -> list[str]:
    (h1, _, _), (h2, _, _) = STYLE_SETS[style_set]
    volumes = any(part.volume for part in parts)
    body, current = [], None
    for part in parts:
        if volumes and part.volume and part.volume != current:
            current = part.volume
            body.append(w_paragraph(part.volume, h1))
        if part.title and part.kind != "volume":
            body.append(w_paragraph(part.title, h2 if volumes else h1))
        body.extend(w_paragraph(p) for p in paragraphs(part.text))
    return body


def docx(
    parts: Sequence[Part], *, style_set: str = "word", members: dict[str, str] | None = None
) -> bytes:
    files = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": RELS,
        "word/document.xml": document_xml(docx_body(parts, style_set)),
        "word/styles.xml": styles_xml(style_set),
    }
    files.update(members or {})
    return zip_of((name, data) for name, data in files.items() if data)


def python_docx(parts: Sequence[Part]) -> bytes:
    """The book written with python-docx: Word's own default template and style names."""
    import docx as python_docx_package

    document = python_docx_package.Document()
    for part in parts:
        if part.title:
            document.add_heading(part.title, level=1)
        for paragraph in paragraphs(part.text):
            document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
