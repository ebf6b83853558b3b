"""decode_novel: encodings, normalisation and refusals, on real bytes."""

from __future__ import annotations

import codecs
import gzip
import io
import zipfile
from pathlib import Path

import pytest

from jobrunner_cineqo._novel import decode as _decode
from jobrunner_cineqo._novel.decode import (
    EmptyText,
    NotText,
    UndecodableText,
    decode_novel,
    normalise_text,
)

DATA = Path(__file__).parents[1] / "data"
RULIN = (DATA / "zh_rulin_excerpt_trad.txt").read_text(encoding="utf-8")
WEB = (DATA / "zh_webnovel.txt").read_text(encoding="utf-8")
RARE = "朱镕基、王堃和陈喆是大学同学，他们在北京读书，我们每年都会见面，一起吃饭喝茶聊天。\n" * 5


def test_utf8_is_read_strictly() -> None:
    d = decode_novel(WEB.encode("utf-8"))
    assert (d.encoding, d.method, d.warnings) == ("utf-8", "utf-8", ())
    assert d.text == normalise_text(WEB)


@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
    ],
)
def test_bom_decides_and_is_stripped(bom: bytes, codec: str) -> None:
    d = decode_novel(bom + "第一章 开始\r\n\r\n正文。".encode(codec))
    assert (d.encoding, d.method) == (codec, "bom")
    assert d.text == "第一章 开始\n\n正文。"


def test_gbk_with_characters_outside_gb2312() -> None:
    with pytest.raises(UnicodeEncodeError):
        RARE.encode("gb2312")  # 镕/堃/喆 exist only in GBK and GB18030: that is the point
    d = decode_novel(RARE.encode("gbk"))
    assert (d.encoding, d.method) == ("gb18030", "gb18030")
    assert d.text == RARE.rstrip()


def test_traditional_text_in_gb18030_is_not_taken_for_big5() -> None:
    d = decode_novel(RULIN.encode("gb18030"))
    assert (d.encoding, d.method) == ("gb18030", "gb18030")
    assert d.text == normalise_text(RULIN)


def test_big5_file() -> None:
    data = RULIN.encode("big5")
    data.decode("gb18030")  # Big5 bytes are valid GB18030 too: only the reading tells them apart
    d = decode_novel(data)
    assert (d.encoding, d.method) == ("big5", "big5")
    assert d.text == normalise_text(RULIN)


def test_simplified_gb18030_is_not_taken_for_big5() -> None:
    d = decode_novel(WEB.encode("gb18030"))
    assert d.encoding == "gb18030"
    assert d.text == normalise_text(WEB)


def test_one_corrupt_byte_in_utf8_is_replaced_with_a_warning() -> None:
    good = ("他走了很远的路，终于到了山脚下。\n" * 300).encode("utf-8")
    cut = good.index(b"\n", 1000) + 1
    d = decode_novel(good[:cut] + b"\xff" + good[cut:])
    assert (d.encoding, d.method) == ("utf-8", "replaced")
    assert d.text.count("\ufffd") == 1
    assert "1 undecodable" in d.warnings[0]


def test_many_corrupt_bytes_are_refused_not_replaced() -> None:
    good = ("他走了很远的路，终于到了山脚下。\n" * 30).encode("utf-8")
    bad = b"".join(good[i : i + 50] + b"\xff\xfe\xff" for i in range(0, len(good), 50))
    with pytest.raises(UndecodableText):
        decode_novel(bad)


def test_mixed_utf8_and_gbk_lines() -> None:
    first = "第一章 开始\n\n他走了很远的路，终于到了山脚下。\n\n"
    second = "第二章 继续\n\n朱镕基、王堃和陈喆在北京读书，我们每年都会见面。\n"
    d = decode_novel(first.encode("utf-8") + second.encode("gbk"))
    assert (d.encoding, d.method) == ("utf-8+gb18030", "mixed")
    assert d.text == (first + second).rstrip()
    assert "2 line(s) read as GB18030" in d.warnings[0]


def test_western_code_page_is_detected_with_a_warning() -> None:
    text = "“Café society,” she said — naïve déjà vu.\nThe façade and the piñata.\n" * 20
    d = decode_novel(text.encode("cp1252"))
    assert (d.encoding, d.method) == ("cp1252", "detected")
    assert d.text == text.rstrip()
    assert "charset-normalizer" in d.warnings[0]


def test_shift_jis_is_detected() -> None:
    text = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。\n" * 30
    d = decode_novel(text.encode("shift_jis"))
    assert d.method == "detected"
    assert d.text == text.rstrip()


def test_given_encoding_wins_and_is_checked() -> None:
    d = decode_novel(RARE.encode("gb18030"), encoding="gb18030")
    assert (d.encoding, d.method, d.text) == ("gb18030", "given", RARE.rstrip())
    with pytest.raises(UndecodableText, match="not valid utf-8"):
        decode_novel(RARE.encode("gb18030"), encoding="utf-8")


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("novel.txt", "第一章")
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
        b"GIF89a\x01\x00\x01\x00",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        gzip.compress("第一章".encode()),
        _zip_bytes(),
        "第一章\x00正文".encode(),
        bytes(range(1, 32)) * 100,
    ],
    ids=["png", "jpeg", "gif", "pdf", "gzip", "zip", "nul", "controls"],
)
def test_binary_is_refused(data: bytes) -> None:
    with pytest.raises(NotText):
        decode_novel(data)


@pytest.mark.parametrize(
    "data",
    [b"", b" \r\n\t\n", codecs.BOM_UTF8, "\u3000\u3000\n\t\n".encode(), codecs.BOM_UTF8 + b"\r\n"],
)
def test_empty_is_refused(data: bytes) -> None:
    with pytest.raises(EmptyText):
        decode_novel(data)


def test_random_high_bytes_are_refused() -> None:
    with pytest.raises(UndecodableText, match="save it as UTF-8"):
        decode_novel(bytes(range(0x80, 0x100)) * 50)


def test_normalisation() -> None:
    raw = "\ufeff第一章\u3000开始\u3000\t\r\n    \t\t\r\n\u3000\u3000正文。  \r第二行\n\n\n"
    assert normalise_text(raw) == "第一章\u3000开始\n\n\u3000\u3000正文。\n第二行"


def test_chunked_reading_matches_whole_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny chunks put chunk ends next to CRLF pairs, blank lines and trailing whitespace.
    text = "第一章 开始 \r\n\r\n\r\n    正文一。\t\r\n\r\n" * 50 + "结尾。\r\n\r\n"
    whole = decode_novel(text.encode("utf-8")).text
    for size in (1, 2, 3, 7, 16):
        monkeypatch.setattr(_decode, "_CHUNK", size)
        assert decode_novel(text.encode("utf-8")).text == whole
        assert decode_novel(text.encode("gb18030")).text == whole
    assert whole == normalise_text(text)
