"""EPUB and DOCX: every shared novel packed as a book splits like its text; the pieces of a book
(navigation, XHTML, heading styles) are read as publishers and Word write them."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import pytest
from books import (
    Part,
    container,
    document_xml,
    docx,
    epub,
    parts_of,
    python_docx,
    styles_xml,
    w_paragraph,
    xhtml,
    zip_of,
)
from corpus import ALICE, ALL, MOBY, XIYOUJI, novel_bytes

from jobrunner_cineqo._novel.chapters import Chapter
from jobrunner_cineqo._novel.decode import decode_novel
from jobrunner_cineqo._novel.novel import Novel, load_novel

PACKERS: dict[str, Callable[[list[Part]], bytes]] = {
    "epub3-nav": epub,
    "epub2-ncx": functools.partial(epub, version=2),
    "docx": docx,
    "docx-chinese-styles": functools.partial(docx, style_set="chinese"),
    "docx-outline-levels": functools.partial(docx, style_set="outline"),
    "python-docx": python_docx,
}
METHODS = {"epub": "navigation", "docx": "headings-style"}


@functools.cache
def as_text(name: str) -> Novel:
    return load_novel(novel_bytes(name))


@functools.cache
def parts(name: str) -> list[Part]:
    return parts_of(decode_novel(novel_bytes(name)).text)


def structure(novel: Novel) -> list[tuple[str, str, int | None, str | None]]:
    return [(c.kind, c.title, c.number, c.volume) for c in novel.chapters() if c.part in (None, 1)]


def squeezed(chapters: list[Chapter]) -> list[str]:
    return [re.sub(r"\s+", "", c.text) for c in chapters]


@pytest.mark.parametrize("packer", PACKERS)
@pytest.mark.parametrize("name", ALL)
def test_every_novel_packed_as_a_book_splits_like_its_text(name: str, packer: str) -> None:
    book = load_novel(PACKERS[packer](parts(name)))
    text = as_text(name)
    assert book.format == ("epub" if packer.startswith("epub") else "docx")
    assert book.outline.method == METHODS[book.format]
    assert (book.encoding, book.method) == ("utf-8", "xml")
    assert structure(book) == structure(text)  # counts, kinds, numbers, titles, volumes
    assert squeezed(book.chapters()) == squeezed(text.chapters())  # and every word of them
    assert not [w for w in book.warnings if "numbering" in w or "goes back" in w]
    assert "\n\n" in book.chapters()[3].text  # paragraphs kept apart


@pytest.mark.parametrize("name", [XIYOUJI, MOBY, ALICE])
def test_a_book_without_navigation_or_heading_styles_gets_the_heading_rules(name: str) -> None:
    text = as_text(name)
    no_nav = load_novel(epub(parts(name), navigation=False))
    plain = [Part(title="", text=f"{p.title}\n\n{p.text}") for p in parts(name)]
    unstyled = load_novel(docx(plain))
    for book, what in [(no_nav, "the EPUB has no navigation"), (unstyled, "no heading styles")]:
        assert book.outline.method == "heading-rules"
        assert structure(book) == structure(text)
        assert any(w.startswith(what) for w in book.warnings)


def xiyouji_volumes() -> list[Part]:
    """西游记 in five volumes of 20 回: nested navigation, or Heading 1 over Heading 2."""
    front, *chapters = parts(XIYOUJI)
    volumes = [f"第{n}卷" for n in "一二三四五"]
    return [front] + [
        Part(title=c.title, text=c.text, volume=volumes[i // 20]) for i, c in enumerate(chapters)
    ]


@pytest.mark.parametrize("packer", ["epub3-nav", "epub2-ncx", "docx", "docx-chinese-styles"])
def test_volumes_come_from_nested_navigation_and_two_heading_levels(packer: str) -> None:
    book = load_novel(PACKERS[packer](xiyouji_volumes()))
    chapters = [c for c in book.chapters() if c.kind == "chapter" and c.part in (None, 1)]
    assert book.outline.volumes == ("第一卷", "第二卷", "第三卷", "第四卷", "第五卷")
    assert [c.number for c in chapters] == list(range(1, 101))
    assert [c.volume for c in chapters] == [book.outline.volumes[i // 20] for i in range(100)]
    assert book.warnings == ()


def test_navigation_naming_one_place_or_only_volumes_falls_back() -> None:
    front, *chapters = parts(XIYOUJI)
    whole = [Part(title="西游记", text="\n\n".join(f"{c.title}\n\n{c.text}" for c in chapters))]
    one = load_novel(epub([front, *whole]))
    assert one.outline.method == "heading-rules"
    assert "fewer than 2 places" in one.warnings[0]
    assert len([c for c in one.chapters() if c.kind == "chapter" and c.part in (None, 1)]) == 100
    halves = [
        Part(title=f"第{n}部", text="\n\n".join(f"{c.title}\n\n{c.text}" for c in half))
        for n, half in (("一", chapters[:50]), ("二", chapters[50:]))
    ]
    volumes_only = load_novel(epub([front, *halves]))
    assert volumes_only.outline.method == "heading-rules"
    assert "names only volumes" in volumes_only.warnings[0]
    assert volumes_only.outline.volumes == ("第一部", "第二部")  # the text's headings say so
    story = [c for c in volumes_only.chapters() if c.kind == "chapter" and c.part in (None, 1)]
    assert [c.number for c in story] == list(range(1, 101))


def one_chapter_epub(body: str, *, doctype: bool = False, head: str = "") -> bytes:
    doc = (
        '<?xml version="1.0" encoding="utf-8"?>'
        + (
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
            '"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">'
            if doctype
            else ""
        )
        + '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        + f"<head><title>t</title>{head}</head><body>{body}</body></html>"
    )
    book = [Part(title="第一章 开端", text="x"), Part(title="第二章 结尾", text="完。")]
    return epub(book, documents={0: doc})


def first_chapter(data: bytes) -> Chapter:
    return load_novel(data).chapters()[0]


def test_xhtml_markup_scripts_styles_images_and_footnote_markers_are_dropped() -> None:
    body = (
        "<h1>第一章</h1><p class='subtitle'>开端</p>"
        "<p>他<em>走</em>了<span>很远</span>的路<a epub:type='noteref' href='#n1'>1</a>。</p>"
        "<script>alert('x')</script><style>p{color:red}</style>"
        "<div><img src='a.png' alt='插图'/>山下有河<sup><a href='n.xhtml#2'>[2]</a></sup>，"
        "<p>河水   很\n清。</p>水边有人。</div>"
        "<p>第一行<br/>第二行</p><p>注<a href='n.xhtml#3'>[3]</a>释<sup>2</sup></p>"
        "<p><ruby>汉<rt>hàn</rt></ruby>字&#x4E00;</p>"
        "<aside epub:type='footnote' id='n1'><p>脚注的正文。</p></aside>"
    )
    chapter = first_chapter(one_chapter_epub(body))
    assert chapter.title == "第一章 开端"
    assert chapter.text == (
        "他走了很远的路。\n\n山下有河，\n\n河水 很 清。\n\n水边有人。\n\n第一行\n第二行"
        "\n\n注释2\n\n汉字一\n\n脚注的正文。"
    )


def test_html_entities_under_an_xhtml_doctype_become_characters() -> None:
    body = "<h2>第一章 开端</h2><p>甲&nbsp;乙&mdash;丙&hellip;&amp;丁</p>"
    assert first_chapter(one_chapter_epub(body, doctype=True)).text == "甲\u00a0乙—丙…&丁"


def test_chapters_pointed_at_inside_one_document() -> None:
    doc = (  # two chapters in one file, reached by fragment
        '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
        "<head><title>t</title></head><body><p>书名页</p>"
        "<h2 id='c1'>第一章 开端</h2><p>一。</p><div id='c2'><h2>第二章 中间</h2><p>二。</p></div>"
        "</body></html>"
    )
    nav = (
        '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml" '
        'xmlns:epub="http://www.idpf.org/2007/ops"><body><nav epub:type="toc"><ol>'
        '<li><a href="text/all.xhtml#c1">第一章 开端</a></li>'
        '<li><a href="text/all.xhtml#c2">第二章 中间</a></li>'
        '<li><a href="text/end.xhtml">第三章 结尾</a></li>'
        '<li><a href="https://example.com/">外链</a></li></ol></nav></body></html>'
    )
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        '<manifest><item id="all" href="text/all.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="end" href="text/end.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        '</manifest><spine><itemref idref="all"/><itemref idref="end"/></spine></package>'
    )
    data = zip_of(
        [
            ("mimetype", "application/epub+zip"),
            ("META-INF/container.xml", container()),
            ("OEBPS/content.opf", opf),
            ("OEBPS/nav.xhtml", nav),
            ("OEBPS/text/all.xhtml", doc),
            ("OEBPS/text/end.xhtml", xhtml("第三章 结尾", ["三。"])),
        ]
    )
    novel = load_novel(data)
    assert [(c.kind, c.title, c.text) for c in novel.chapters()] == [
        ("front_matter", "", "书名页"),
        ("chapter", "第一章 开端", "一。"),
        ("chapter", "第二章 中间", "二。"),
        ("chapter", "第三章 结尾", "三。"),
    ]


def test_unnamed_navigation_entries_around_the_chapters_are_front_and_back_matter() -> None:
    book = [
        Part(title="封面", text="星河旧梦"),
        Part(title="版权信息", text="版权所有。"),
        Part(title="第一章 离家", text="他走了。"),
        Part(title="The Middle", text="中间。"),
        Part(title="第二章 归来", text="他回来了。"),
        Part(title="作者简介", text="无名氏。"),
    ]
    novel = load_novel(epub(book))
    assert [(c.kind, c.title, c.number) for c in novel.chapters()] == [
        ("front_matter", "封面", None),
        ("front_matter", "版权信息", None),
        ("chapter", "第一章 离家", 1),
        ("chapter", "The Middle", None),
        ("chapter", "第二章 归来", 2),
        ("back_matter", "作者简介", None),
    ]


def test_a_broken_xhtml_document_is_read_leniently() -> None:
    broken = "<html><body><h2>第一章 开端</h2><p>甲 & 乙<p>丙</body>"
    book = [Part(title="第一章 开端", text="x"), Part(title="第二章 结尾", text="完。")]
    novel = load_novel(epub(book, documents={0: broken}))
    assert novel.chapters()[0].text == "甲 & 乙\n\n丙"
    assert novel.warnings == ("OEBPS/text/c0000.xhtml is not well-formed XHTML; read as HTML",)


def word(body: list[str], styles: str = "word") -> bytes:
    return docx(
        [], members={"word/document.xml": document_xml(body), "word/styles.xml": styles_xml(styles)}
    )


def test_docx_heading_levels_styles_and_what_stays_text() -> None:
    outline_direct = (
        '<w:p><w:pPr><w:outlineLvl w:val="1"/></w:pPr><w:r><w:t>第二章 直接</w:t></w:r></w:p>'
    )
    text_box = (
        "<w:p><w:r><w:t>正文</w:t></w:r><w:r><w:drawing><w:txbxContent>"
        "<w:p><w:r><w:t>文本框</w:t></w:r></w:p></w:txbxContent></w:drawing></w:r></w:p>"
    )
    deleted = (
        '<w:p><w:r><w:t xml:space="preserve">留下 </w:t></w:r><w:del><w:r><w:delText>删去'
        "</w:delText></w:r></w:del><w:r><w:instrText>PAGE</w:instrText></w:r>"
        "<w:r><w:tab/><w:t>制表</w:t><w:br/><w:t>换行</w:t></w:r></w:p>"
    )
    body = [
        w_paragraph("星河旧梦", "Heading1"),  # one top heading over all: the book's title
        w_paragraph("作者：无名氏"),
        w_paragraph("第一章 离家", "Heading2"),
        w_paragraph("一节", "Heading3"),  # a third level stays text
        w_paragraph("他走了。"),
        outline_direct,
        text_box,
        deleted,
    ]
    novel = load_novel(word(body))
    assert [(c.kind, c.title, c.number, c.volume) for c in novel.chapters()] == [
        ("front_matter", "", None, None),
        ("chapter", "第一章 离家", 1, None),
        ("chapter", "第二章 直接", 2, None),
    ]
    front, first, second = novel.chapters()
    assert front.text == "星河旧梦\n\n作者：无名氏"
    assert first.text == "一节\n\n他走了。"
    assert second.text == "正文\n\n留下 制表\n换行"


def test_a_word_document_without_its_styles_part_or_styles_still_reads() -> None:
    body = [w_paragraph("第一章 离家"), w_paragraph("他走了。"), w_paragraph("第二章 归来")]
    body.append(w_paragraph("他回来了。"))
    data = docx([], members={"word/document.xml": document_xml(body), "word/styles.xml": ""})
    novel = load_novel(data)
    assert novel.outline.method == "heading-rules"
    assert [c.title for c in novel.chapters()] == ["第一章 离家", "第二章 归来"]


def test_the_format_comes_from_the_bytes() -> None:
    book = parts(ALICE)[:4]
    assert load_novel(epub(book)).format == "epub"
    assert load_novel(docx(book)).format == "docx"
    assert load_novel(novel_bytes(ALICE)).format == "text"
    # An EPUB whose mimetype member is missing is still told by its container.
    data = epub(book)
    renamed = data.replace(b"mimetype", b"mimetypX")
    assert load_novel(renamed).format == "epub"
