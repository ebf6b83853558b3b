"""Hostile and broken EPUB/DOCX files are refused with a message a user can act on."""

from __future__ import annotations

import io
import re
import struct
import zipfile

import pytest
from books import Part, document_xml, docx, epub, w_paragraph, xhtml, zip_of

from jobrunner_cineqo._novel.archive import BadBook
from jobrunner_cineqo._novel.novel import load_novel

BOOK = [Part(title="第一章 开端", text="他走了。"), Part(title="第二章 结尾", text="完。")]
AES = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
FONT_OBFUSCATION = "http://www.idpf.org/2008/embedding"


def refused(data: bytes, message: str, *, max_novel_bytes: int = 50 << 20) -> str:
    with pytest.raises(BadBook) as caught:
        load_novel(data, max_novel_bytes=max_novel_bytes)
    assert re.search(message, str(caught.value)), str(caught.value)
    return str(caught.value)


def encryption(uri: str, algorithm: str) -> str:
    return (
        '<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"'
        ' xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        f'<enc:EncryptionMethod Algorithm="{algorithm}"/><enc:CipherData>'
        f'<enc:CipherReference URI="{uri}"/></enc:CipherData></enc:EncryptedData></encryption>'
    )


def patch_central(data: bytes, name: bytes, offset: int, value: bytes) -> bytes:
    """Overwrite a field of `name`'s central directory entry (what zip readers trust)."""
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        length = struct.unpack("<H", data[at + 28 : at + 30])[0]
        if data[at + 46 : at + 46 + length] == name:
            return data[: at + offset] + value + data[at + offset + len(value) :]
        at += 46


def replaced(data: bytes, name: str, content: str) -> bytes:
    """The archive with one member's content replaced."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [(n, content if n == name else archive.read(n)) for n in archive.namelist()]
    return zip_of(members, stored=("mimetype",))


def test_a_zip_bomb_member_is_refused_by_its_ratio() -> None:
    bomb = "<p>" + " " * (8 << 20) + "</p>"  # 8 MB of spaces: about 8 KB compressed
    data = epub(BOOK, documents={0: xhtml("第一章 开端", [bomb])})
    refused(data, r"member OEBPS/text/c0000.xhtml expands more than 100 times .* zip bomb")


def test_a_book_expanding_past_the_limit_is_refused() -> None:
    chapters = [Part(title=f"第{n}章", text="字" * 40_000) for n in range(1, 60)]
    message = refused(epub(chapters), r"expands to more than 4\.0 MB", max_novel_bytes=1 << 20)
    assert "CINEQO_MAX_NOVEL_BYTES" in message


def test_a_member_lying_about_its_size_is_caught() -> None:
    data = epub(BOOK, documents={0: xhtml("第一章 开端", ["字" * 100_000])})
    lying = patch_central(data, b"OEBPS/text/c0000.xhtml", 24, struct.pack("<I", 100))
    refused(lying, r"member OEBPS/text/c0000.xhtml is damaged or cut short")


def test_truncated_and_garbled_archives() -> None:
    data = epub(BOOK)
    refused(data[: len(data) // 2], r"damaged or cut short: its ZIP directory cannot be read")
    refused(b"PK\x03\x04" + b"\x00" * 100, r"damaged or cut short")
    refused(replaced(data, "OEBPS/content.opf", "<package><manifest>"), r"content.opf is not well")


def test_a_password_protected_member_is_refused() -> None:
    data = epub(BOOK)
    locked = patch_central(data, b"OEBPS/text/c0000.xhtml", 8, struct.pack("<H", 1))
    refused(locked, r"member OEBPS/text/c0000.xhtml is password-protected")


def test_too_many_members() -> None:
    refused(epub(BOOK, extra=[(f"junk/{n}", "") for n in range(20_001)]), r"20\d+ members")


def test_deep_nesting_is_refused() -> None:
    deep = "<div>" * 300 + "深" + "</div>" * 300
    data = epub(BOOK, documents={0: xhtml("第一章 开端", []).replace("</body>", deep + "</body>")})
    refused(data, r"c0000.xhtml is not well-formed XML: it is nested more than 256 levels deep")


XXE = (
    '<?xml version="1.0"?><!DOCTYPE html [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&xxe;</p></body></html>'
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10))
    + ']><html xmlns="http://www.w3.org/1999/xhtml"><body><p>&lol9;</p></body></html>'
).replace("&lol0;", "&lol;")


@pytest.mark.parametrize("doc", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_xml_entities_are_refused(doc: str) -> None:
    refused(epub(BOOK, documents={0: doc}), r"c0000.xhtml declares XML entities")
    utf16 = doc.replace('version="1.0"?>', 'version="1.0" encoding="UTF-16"?>').encode("utf-16")
    refused(epub(BOOK, documents={0: utf16}), r"declares XML entities")  # not byte-searchable
    in_docx = docx(BOOK, members={"word/document.xml": doc})
    refused(in_docx, r"word/document.xml declares a DOCTYPE or XML entities")


def test_drm_is_refused_but_font_obfuscation_is_fine() -> None:
    drm = encryption("OEBPS/text/c0000.xhtml", AES)
    refused(epub(BOOK, extra=[("META-INF/encryption.xml", drm)]), r"DRM-protected")
    fonts = encryption("OEBPS/fonts/a.otf", FONT_OBFUSCATION)
    book = load_novel(epub(BOOK, extra=[("META-INF/encryption.xml", fonts)]))
    assert [c.title for c in book.chapters()] == ["第一章 开端", "第二章 结尾"]
    encrypted_font = encryption("OEBPS/fonts/a.otf", AES)  # a font, not the text: readable
    assert load_novel(epub(BOOK, extra=[("META-INF/encryption.xml", encrypted_font)]))


def test_broken_word_documents() -> None:
    refused(docx(BOOK, members={"word/document.xml": ""}), r"has no word/document.xml")
    refused(docx([]), r"holds no text")
    half = document_xml([w_paragraph("第一章")]).replace("</w:body>", "")
    refused(docx(BOOK, members={"word/document.xml": half}), r"is not well-formed XML")


def test_zips_that_are_not_books_and_books_without_text() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("novel.txt", "第一章")
    refused(buffer.getvalue(), r"neither an EPUB .* nor a Word document")
    no_container = zip_of([("mimetype", "application/epub+zip")])
    refused(no_container, r"has no META-INF/container.xml")
    images_only = epub([Part(title="", text="")])
    refused(images_only, r"holds no text")
