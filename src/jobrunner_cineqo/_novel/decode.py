"""Turn the bytes of an uploaded novel into clean text, or refuse them with a clear reason.

Order: BOM → strict UTF-8 → strict GB18030 or Big5 (whichever reads as common Chinese) →
UTF-8 or GB18030/Big5 with a tiny fraction (≤ 0.1 %) of bad bytes replaced, with a warning →
UTF-8 lines mixed with GB18030 lines, each line strict, with a warning → charset-normalizer on
a sample → refuse. A file is never turned into silent mojibake.

The near-miss replace step comes before charset-normalizer on purpose: a UTF-8 novel with one
corrupt byte is still UTF-8, while a detector would happily read it as some single-byte code page.
It only applies when valid multi-byte characters far outnumber the bad bytes, so a cp1252 file
(almost no valid UTF-8 sequences) still goes to the detector. GB18030 decodes almost any bytes,
so GB18030 and Big5 are told apart by how many of the decoded characters are common Chinese ones.

Refused: binary files (image/PDF/archive magic, NUL bytes — so UTF-16 needs its BOM — or > 1 %
control characters) with NotText; empty or whitespace-only files with EmptyText.

Normalised text: no BOM, LF line ends, no trailing whitespace (spaces, tabs, U+3000) on any line
or at the end. It is decoded in 64 KiB chunks: the peak is about the input plus two copies of the
text (the pieces and their join), instead of the ~3x a one-shot decode briefly needs.
"""

from __future__ import annotations

import codecs
import re

import attrs

__all__ = ["Decoded", "EmptyText", "NotText", "UndecodableText", "decode_novel", "normalise_text"]


class NotText(ValueError):
    """The upload is a binary file (image, PDF, archive), not a text file."""


class EmptyText(ValueError):
    """The upload is empty or holds only whitespace."""


class UndecodableText(ValueError):
    """The upload's encoding cannot be determined without guessing."""


@attrs.frozen(kw_only=True)
class Decoded:
    """Normalised text and how it was read."""

    text: str
    encoding: str
    method: str  # bom | utf-8 | gb18030 | big5 | replaced | mixed | detected | given
    warnings: tuple[str, ...] = ()


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "ZIP archive (or EPUB/DOCX)"),
    (b"PK\x05\x06", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"\xfd7zXZ\x00", "xz archive"),
    (b"\xd0\xcf\x11\xe0", "MS Office document"),
)
# Longest first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (b"\x84\x31\x95\x33", "gb18030"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# About 450 of the most frequent simplified characters, the traditional forms of the commonest
# ones, and CJK punctuation. Real Chinese text scores ~0.6-0.8 against this set; Big5 bytes read
# as GB18030 (or the reverse) land on rare characters, kana and symbols and score below 0.15.
_COMMON_CJK = frozenset(
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年"
    "过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心"
    "她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间"
    "由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给"
    "世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变"
    "四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社"
    "便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北"
    "边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济"
    "车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团"
    "集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企"
    "八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考"
    "曰吾汝乃矣耶兮哉焉"
    "這個們來說為國時會對後麼經現兩長樣與進實點聲話裡過還發學當問機給幾間開見頭聽東電門從動紅無"
    "書車風體軍產難應員愛觀錢變讓將萬業關種總條記寫氣師強歡該隊張廣響資際結錯許義處邊認識覺題議"
    "聯場術歲陳劉楊黃趙吳孫馬樂親聖雲飛龍鳥魚羅數爾請讀賣買誰養陽陰聞語雙傳職專層鄉戰歷殺報歸連"
    "達區鐵線續竟裏隻卻雖見齊寶園舊興詩"
    "，。、：；！？“”‘’「」『』《》（）…—"
)
_SCORE_SAMPLE = 32 * 1024  # bytes read three ways to rank GB18030 and Big5
_SCORE_CHARS = 16 * 1024
_DROP_COMMON = dict.fromkeys(map(ord, _COMMON_CJK))
_CHINESE_SCORE = 0.4  # below this a CJK decoding is treated as mojibake
_REPLACE_LIMIT = 0.001  # at most 0.1 % replaced characters
_DETECT_SAMPLE = 256 * 1024
_CHUNK = 64 * 1024  # bounds the temporary copies made while normalising
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_WESTERN = frozenset({"cp1250", "cp1252", "cp1257", "latin_1", "iso8859_15", "cp1254"})


def decode_novel(data: bytes, *, encoding: str | None = None) -> Decoded:
    """Decode and normalise a novel's bytes; raise NotText, EmptyText or UndecodableText."""
    if not data or data.isspace():
        raise EmptyText("the file is empty or holds only whitespace")
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise NotText(f"this is a {what}, not a text file")
    decoded = _decode(data, encoding)
    text = decoded.text
    if not text or text.isspace():
        raise EmptyText("the file holds only whitespace")
    if len(_CONTROL.findall(text[:65536])) > 0.01 * min(len(text), 65536):
        raise NotText("the file holds control characters, not text")
    return decoded


def normalise_text(text: str) -> str:
    """Drop BOMs, turn CRLF/CR into LF, strip trailing whitespace on every line and at the end."""
    return _normalise_lines(text).rstrip()


def _normalise_lines(text: str) -> str:
    if "\ufeff" in text:
        text = text.replace("\ufeff", "")
    # One pass: rstrip() drops the "\r" of CRLF together with trailing spaces, tabs, U+3000;
    # on English text it is several times faster than a regex substitution.
    text = "\n".join([line.rstrip() for line in text.split("\n")])
    if "\r" in text:  # lone CRs: classic Mac line ends
        text = "\n".join([line.rstrip() for line in text.replace("\r", "\n").split("\n")])
    return text


def _read(data: bytes, codec: str, errors: str = "strict", skip: int = 0) -> str:
    """Decode and normalise in 64 KiB chunks cut after b"\\n".

    Decoding a whole file at once briefly needs ~3x its size (CPython widens its buffer to UCS-2
    for the full input); chunks bound that, and only the final join holds two copies of the text.
    A chunk ends with b"\\n", so a CRLF pair is never cut in two.
    """
    if not _ascii_safe(codec):
        return normalise_text(data[skip:].decode(codec, errors))
    pieces: list[str] = []
    start, size, last = skip, len(data), ""
    while start < size:
        end = data.find(b"\n", start + _CHUNK) + 1 or size
        pieces.append(_normalise_lines(data[start:end].decode(codec, errors)))
        start = end
    while pieces and not (last := pieces.pop().rstrip()):
        pass
    return "".join([*pieces, last]) if pieces else last


def _ascii_safe(codec: str) -> bool:
    """Whether byte LF always stands for itself, never inside a character, so chunks can end there.

    True for UTF-8, GB18030, Big5, Shift-JIS, EUC and single-byte code pages; not for UTF-16/32.
    """
    name = codecs.lookup(codec).name
    if name.startswith(("utf-16", "utf-32", "utf-7", "iso2022", "hz")):
        return False
    return "\n\r\t ".encode(name) == b"\n\r\t "


def _decode(data: bytes, encoding: str | None) -> Decoded:
    if encoding is not None:
        try:
            return Decoded(text=_read(data, encoding), encoding=encoding, method="given")
        except (UnicodeDecodeError, LookupError) as exc:
            raise UndecodableText(f"the file is not valid {encoding}: {exc}") from exc
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text = _read(data, name, skip=len(bom))
            except UnicodeDecodeError as exc:
                raise UndecodableText(f"the file starts with a {name} BOM but {exc}") from exc
            return Decoded(text=text, encoding=name, method="bom")
    if b"\x00" in data:
        raise NotText("the file holds NUL bytes: binary, or UTF-16 without a BOM")
    try:
        return Decoded(text=_read(data, "utf-8"), encoding="utf-8", method="utf-8")
    except UnicodeDecodeError:
        pass
    sample = _sample(data)
    ranked = _rank_cjk(sample)
    for name in ranked:
        try:
            text = _read(data, name)
        except UnicodeDecodeError:
            continue
        return Decoded(text=text, encoding=name, method="gb18030" if name == "gb18030" else "big5")
    return _decode_near_miss(data, sample, ranked) or _decode_mixed(data) or _decode_detected(data)


def _sample(data: bytes) -> bytes:
    """Up to 32 KiB of whole lines from the first line holding a non-ASCII byte."""
    m = _HIGH_BYTE.search(data)
    start = data.rfind(b"\n", 0, m.start()) + 1 if m else 0
    end = data.rfind(b"\n", start, start + _SCORE_SAMPLE)
    return data[start : end if end > start else start + _SCORE_SAMPLE]


def _rank_cjk(sample: bytes) -> list[str]:
    """CJK codecs whose reading of the sample looks like Chinese, best first."""
    scored = []
    for name in ("gb18030", "big5", "cp950"):
        score = chinese_score(sample.decode(name, "replace"))
        if score >= _CHINESE_SCORE:
            scored.append((score, name))
        if score >= 0.6 and name == "gb18030":
            break  # GB18030 reads almost any bytes; only look further when it reads badly
    return [name for _, name in sorted(scored, key=lambda pair: -pair[0])]


def _decode_near_miss(data: bytes, sample: bytes, ranked: list[str]) -> Decoded | None:
    text = sample.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = sum(ch > "\x7f" for ch in text) - bad
    candidates = (["utf-8"] if good >= 10 * bad else []) + ranked
    for name in candidates:
        text = _read(data, name, "replace")
        bad = text.count("\ufffd")
        if bad <= max(1, _REPLACE_LIMIT * len(text)):
            warning = f"{bad} undecodable byte sequence(s) replaced with U+FFFD reading {name}"
            return Decoded(text=text, encoding=name, method="replaced", warnings=(warning,))
    return None


def _decode_mixed(data: bytes) -> Decoded | None:
    """Lines of UTF-8 and lines of GB18030 in one file (pasted together from two sources)."""
    lines = data.split(b"\n")
    utf8_lines = gb_lines = 0
    out: list[str] = []
    gb_text: list[str] = []
    for line in lines:
        try:
            out.append(line.decode("utf-8"))
            utf8_lines += not line.isascii()
        except UnicodeDecodeError:
            try:
                out.append(line.decode("gb18030"))
            except UnicodeDecodeError:
                return None
            gb_lines += 1
            gb_text.append(out[-1])
    if not utf8_lines or chinese_score("".join(gb_text)) < _CHINESE_SCORE:
        return None
    warning = f"mixed encodings: {gb_lines} line(s) read as GB18030, the rest as UTF-8"
    text = normalise_text("\n".join(out))
    return Decoded(text=text, encoding="utf-8+gb18030", method="mixed", warnings=(warning,))


def _decode_detected(data: bytes) -> Decoded:
    from charset_normalizer import from_bytes  # imported lazily: only odd files get here

    sample = data[:_DETECT_SAMPLE]
    if len(data) > _DETECT_SAMPLE and b"\n" in sample:
        # A sample cut inside a multibyte character makes charset-normalizer return None.
        sample = sample[: sample.rfind(b"\n")]
    results = list(from_bytes(sample))
    if not results:
        raise UndecodableText(
            "cannot tell this file's encoding: it is not UTF-8, GB18030 or Big5 "
            "and no other encoding fits; save it as UTF-8 and upload it again"
        )
    name = results[0].encoding  # charset-normalizer's own ranking: best first
    # On Western text cp1250/cp1257 often tie with cp1252 (the usual Windows code page).
    if name in _WESTERN and any(
        r.encoding == "cp1252" and r.chaos <= results[0].chaos + 0.1 for r in results
    ):
        name = "cp1252"
    try:
        text = _read(data, name)
    except UnicodeDecodeError as exc:
        raise UndecodableText(
            f"the file looks like {name} but is not valid {name} throughout ({exc}); "
            "save it as UTF-8 and upload it again"
        ) from exc
    warning = f"encoding guessed as {name} by charset-normalizer"
    return Decoded(text=text, encoding=name, method="detected", warnings=(warning,))


def chinese_score(text: str) -> float:
    """Share of common Chinese characters among the non-ASCII ones in (a sample of) the text."""
    sample = text[:_SCORE_CHARS]
    non_ascii = len(sample) - len(sample.encode("ascii", "ignore")) - sample.count("\u3000")
    hits = len(sample) - len(sample.translate(_DROP_COMMON))
    return hits / non_ascii if non_ascii > 0 else 0.0
