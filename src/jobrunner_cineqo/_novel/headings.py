"""Recognising headings in a novel: Chinese 第…章/回/卷 and specials, English Chapter/Book/Part,
volumes above chapters, and Project Gutenberg boilerplate.

Used by `toc.py`, which finds the tables of contents among them, and `chapters.py`, which turns
the headings into sections.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import attrs

from .numerals import parse_chinese, parse_english_words, parse_roman

_MAX_LINE = 200  # a longer line is prose, and is never sliced out of the text
_ZH_NUM = "0-9０-９〇零一二三四五六七八九十百千万两兩壹贰貳叁參肆伍陆陸柒捌玖拾佰仟萬"
_ZH_SPECIALS = {
    "序章": "prologue", "序幕": "prologue", "楔子": "prologue", "引子": "prologue",
    "序言": "front_matter", "自序": "front_matter", "序": "front_matter", "前言": "front_matter",
    "引言": "front_matter", "终章": "epilogue", "終章": "epilogue", "尾声": "epilogue",
    "尾聲": "epilogue", "后记": "afterword", "後記": "afterword", "番外": "extra",
}  # fmt: skip
_EN_SPECIALS = {
    "prologue": "prologue", "epilogue": "epilogue", "preface": "front_matter",
    "foreword": "front_matter", "introduction": "front_matter", "etymology": "front_matter",
    "extracts": "front_matter", "afterword": "afterword",
}  # fmt: skip
_EN_VOLUMES = {"book", "part", "volume", "vol."}
_VOLUME_UNITS = "卷集部"
# Characters that, right after 回/章, show a word rather than a heading: 第二回合, 第二回来…
_BAD_NEXT = {"回": "合来來去到头頭家", "章": "程节節"}
_JOINED_OK = "章回"  # "第一章风起" is common; other units need a space: "第一部手机" is prose
_SEPARATORS = " :：·、.．—-_|"
_PROSE_PUNCT = set("，。！？；：、“”「」…,!?;")
_SENTENCE_END = "。！？…”」』\"'"
_QUOTES = "“\"「『‘'(（—"

_OPENERS = "|".join(_ZH_SPECIALS) + "|" + "|".join(w.capitalize() for w in _EN_SPECIALS)
_STARTS = (
    rf"[ \t\u3000]{{0,8}}(?:正文|[【〖〔\[]?[ \t\u3000]?第|{_OPENERS}|{_OPENERS.upper()}"
    r"|CHAP|Chap|BOOK|Book|PART|Part|VOL|Vol)"
)
_CANDIDATE = re.compile("\n" + _STARTS)
_FIRST = re.compile(_STARTS)
_ZH = re.compile(
    rf"(?:正文卷?[ :：]?)?(?P<head>[【〖〔\[]? ?"
    rf"(?:第 ?(?P<num>[{_ZH_NUM}]{{1,12}}) ?(?P<unit>[章节節回卷集部篇话話])"
    rf"|(?P<special>序章|序幕|序言|自序|序|楔子|引子|引言|前言|终章|終章|尾声|尾聲|后记|後記"
    rf"|番外篇?(?P<xnum>[{_ZH_NUM}]*)))"
    r"(?P<close>[】〗〕\]])?(?P<rest>.*))"
)
_EN = re.compile(
    r"(?P<kw>CHAPTER|Chapter|CHAP\.|Chap\.|BOOK|Book|PART|Part|VOLUME|Volume|VOL\.|Vol\.)"
    r" (?P<tail>.+)"
)
_EN_NUM = re.compile(r"(?:\d{1,4}|[IVXLCDM]+|[ivxlcdm]+)\b")
_EN_WORDS = re.compile(r"[A-Za-z]+(?:[- ][A-Za-z]+){0,3}")
_EN_SPECIAL = re.compile(
    "(?P<kw>" + "|".join(f"{w.upper()}|{w.capitalize()}" for w in _EN_SPECIALS) + ")"
    r"(?P<rest>[ .:(—-].*)?"
)
# Dot leaders and a page number at the end of a contents line.
_LEADER = re.compile(
    r" ?(?:\.{3,}|(?:\. ){3,}\.?|…{2,}|·{3,}|．{3,}|_{3,}) ?(?:\d{1,4}|[ivxlcdm]{1,7})$", re.I
)
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_NONSPACE = re.compile(r"\S")
_LEADING_BLANK = re.compile(r"(?:[ \t\u3000]*\n)+")
_PG_START = re.compile(r"\*\*\* ?START OF (?:THE|THIS) PROJECT GUTENBERG", re.I)
_PG_END_LINE = re.compile(r"^End of (?:the )?Project Gutenberg", re.I | re.M)


@attrs.frozen(kw_only=True)
class _Parsed:
    level: int  # 0: volume, 1: chapter level
    kind: str
    number: int | None
    title: str
    unit: str  # 章, 回, chapter, part… or the special word
    bare: bool  # no title after the number: the title may be on the next line
    zh: bool


@attrs.frozen(kw_only=True)
class _Heading:
    start: int  # where the heading line starts
    body: int  # where the body starts: after the heading line and a joined title line
    level: int
    kind: str
    number: int | None
    title: str
    unit: str

    @property
    def key(self) -> tuple[int, str, int | str]:
        return (self.level, self.kind, self.unit if self.number is None else self.number)


def _classify(line: str) -> _Parsed | None:
    """What heading a whitespace-collapsed line is, if any."""
    if "..." in line or "…" in line or "·" in line or "．．" in line or "__" in line:
        line = _LEADER.sub("", line)  # "第一回 灵根育孕源流出 ………… 12" in a table of contents
    if not line or len(line) > 100:
        return None
    if len(line) > 30 and line[-1] in _SENTENCE_END:
        return None  # a long line ending a sentence is prose
    return _classify_zh(line) or _classify_en(line)


def _classify_zh(line: str) -> _Parsed | None:
    m = _ZH.match(line)
    if m is None or len(line) > 60:
        return None
    rest, unit, special = m["rest"], m["unit"], m["special"]
    separated = bool(m["close"]) or not rest or rest[0] in _SEPARATORS
    if unit:
        if rest and rest[0] in _BAD_NEXT.get(unit, ""):
            return None
        if not separated and (
            unit not in _JOINED_OK or len(rest) > 20 or any(ch in _PROSE_PUNCT for ch in rest)
        ):
            return None
        level, kind = (0, "volume") if unit in _VOLUME_UNITS else (1, "chapter")
        number = parse_chinese(m["num"])
    else:
        if not separated:
            return None
        unit = "番外" if special.startswith("番外") else special
        level, kind = 1, _ZH_SPECIALS[unit]
        number = parse_chinese(m["xnum"]) if m["xnum"] else None
    title = m["head"]
    return _Parsed(
        level=level, kind=kind, number=number, title=title, unit=unit, bare=not rest, zh=True
    )


def _classify_en(line: str) -> _Parsed | None:
    if m := _EN_SPECIAL.fullmatch(line):
        word = m["kw"].lower()
        remainder = (m["rest"] or "").lstrip(" .:—-")
        if remainder[:1].islower() and (len(line) > 40 or line[-1] in ".!?"):
            return None
        kind = _EN_SPECIALS[word]
        return _Parsed(
            level=1, kind=kind, number=None, title=line, unit=word, bare=not remainder, zh=False
        )
    m = _EN.match(line)
    if m is None:
        return None
    number, rest = _english_number(m["tail"])
    if number is None:
        return None
    remainder = rest.lstrip(" .:—–-")
    if remainder[:1].islower():
        return None  # "Part two of the plan…" is prose; titles are capitalised
    word = m["kw"].lower()
    level = 0 if word in _EN_VOLUMES else 1
    kind = "volume" if level == 0 else "chapter"
    return _Parsed(
        level=level, kind=kind, number=number, title=line, unit=word, bare=not remainder, zh=False
    )


def _english_number(tail: str) -> tuple[int | None, str]:
    if m := _EN_NUM.match(tail):
        token = m.group()
        value = int(token) if token.isdigit() else parse_roman(token)
        if value is not None:
            return value, tail[m.end() :]
    if m := _EN_WORDS.match(tail):
        words = m.group()
        # "One The Beginning": try the longest run of words that still reads as a number.
        ends = {i for i, ch in enumerate(words) if ch in " -"} | {len(words)}
        for end in sorted(ends, reverse=True):
            if (value := parse_english_words(words[:end])) is not None:
                return value, tail[end:]
    return None, tail


def _find_headings(
    text: str, lo: int, hi: int, progress: Callable[[float], None]
) -> list[_Heading]:
    found: list[tuple[int, int, _Parsed]] = []
    for start in _candidate_starts(text, lo, hi, progress):
        end = text.find("\n", start, min(start + _MAX_LINE + 1, hi))
        if end < 0:
            if hi - start > _MAX_LINE:
                continue  # a very long line (or the whole text on one line) is prose
            end = hi
        parsed = _classify(" ".join(text[start:end].split()))
        if parsed is not None:
            found.append((start, end, parsed))
    starts = {start for start, _, _ in found}
    heads = [_settle(text, start, end, parsed, starts, hi) for start, end, parsed in found]
    return [h for h in heads if h is not None]


def _candidate_starts(
    text: str, lo: int, hi: int, progress: Callable[[float], None]
) -> Iterator[int]:
    """Starts of lines that begin like a heading, in windows so progress can be reported."""
    if lo == 0 and _FIRST.match(text, 0, hi):
        yield 0
    window, last, pos = max(1 << 20, (hi - lo) // 20), -1, max(lo - 1, 0)
    while pos < hi:
        end = min(pos + window, hi)
        for m in _CANDIDATE.finditer(text, pos, end):
            if m.start() > last:
                last = m.start()
                yield last + 1
        progress((end - lo) / max(hi - lo, 1))
        # Windows overlap so a candidate cut by a window's end is seen by the next window.
        pos = end if end >= hi else end - 64


def _settle(
    text: str, start: int, end: int, p: _Parsed, starts: set[int], hi: int
) -> _Heading | None:
    """Look at the line after a heading: join it when it is (the rest of) the title."""
    title, body = p.title, end
    nstart = end + 1
    nend = _line_end(text, nstart, hi)
    next_blank = nstart >= hi or not _NONSPACE.search(text, nstart, nend)
    if not next_blank and nstart not in starts and nend - nstart <= 60:
        line = " ".join(text[nstart:nend].split())
        after_blank = nend + 1 >= hi or not _NONSPACE.search(
            text, nend + 1, _line_end(text, nend + 1, hi)
        )
        if p.bare and _is_title_line(line, p.zh, after_blank):
            title, body = f"{title} {line}", nend
        elif not p.bare and not p.zh and after_blank and _is_title_case(f"{title} {line}"):
            title, body = f"{title} {line}", nend  # a long English title wrapped onto two lines
    if not p.zh and not p.bare and body == end and not next_blank and nstart not in starts:
        return None  # "BOOK I. (Folio), CHAPTER I.—This whale…" starts a paragraph
    return _Heading(
        start=start,
        body=body,
        level=p.level,
        kind=p.kind,
        number=p.number,
        title=title,
        unit=p.unit,
    )


def _line_end(text: str, start: int, hi: int) -> int:
    end = text.find("\n", start, hi)
    return hi if end < 0 else end


def _is_title_line(line: str, zh: bool, followed_by_blank: bool) -> bool:
    if line[0] in _QUOTES or line[-1] in "。，；：、,;:":
        return False
    if zh:
        short = len(line) <= 30 and not any(ch in _PROSE_PUNCT for ch in line)
        return line[-1] not in "！？…”」" and (followed_by_blank or short)
    return followed_by_blank and line[-1] != "." and (line[0].isupper() or line[0].isdigit())


def _is_title_case(title: str) -> bool:
    """Most longer words capitalised, as in "Of Whales in Paint; in Teeth; in Wood"."""
    words = [w for w in _WORD.findall(title) if len(w) >= 4]
    return len(title) <= 120 and sum(w[0].isupper() for w in words) >= 0.7 * len(words)


def _gutenberg_bounds(text: str) -> tuple[int, int]:
    """Where a Project Gutenberg body starts and ends; (0, len) for any other text."""
    lo, hi = 0, len(text)
    if m := _PG_START.search(text, 0, 100_000):
        lo = _line_end(text, m.end(), hi) + 1
    marker = max(
        text.rfind("*** END OF THE PROJECT GUTENBERG"),
        text.rfind("*** END OF THIS PROJECT GUTENBERG"),
        text.rfind("***END OF THE PROJECT GUTENBERG"),
    )
    if marker > lo:
        hi = text.rfind("\n", 0, marker) + 1
        # "End of the Project Gutenberg EBook of …" usually stands just above the marker.
        ends = list(_PG_END_LINE.finditer(text, max(lo, hi - 3000), hi))
        hi = ends[-1].start() if ends else hi
    return min(lo, hi), hi


def _settle_levels(heads: list[_Heading]) -> list[_Heading]:
    # "EXTRACTS (Supplied by…)" then "EXTRACTS.": a repeated unnumbered heading is a subheading.
    heads = [
        h
        for i, h in enumerate(heads)
        if i == 0 or h.number is not None or h.key != heads[i - 1].key
    ]
    units = {h.unit for h in heads}
    if units & {"章", "回"} and units & {"节", "節"}:
        heads = [h for h in heads if h.unit not in ("节", "節")]  # sections inside chapters
    if not any(h.level == 1 and h.kind == "chapter" for h in heads):
        # Volumes without chapters under them are the chapters.
        heads = [attrs.evolve(h, level=1, kind="chapter") if h.level == 0 else h for h in heads]
    return heads


def _has_letters(text: str, start: int, end: int) -> bool:
    return start < end and _LETTER.search(text, start, end) is not None


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop blank lines around text[start:end] (keeping the first line's indentation)."""
    if m := _LEADING_BLANK.match(text, start, end):
        start = m.end()
    while end > start and text[end - 1] in " \t\n\u3000":
        end -= 1
    return start, end


def _cut_points(text: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int]]:
    """Cut text[start:end] into near-equal pieces of ≤ limit chars at paragraph ends."""
    while end - start > limit:
        pieces = -(-(end - start) // limit)
        target = -(-(end - start) // pieces)
        hi = start + min(limit, target + target // 10)
        cut = _break_at(text, start + target // 2, hi) or start + target
        yield _trim(text, start, cut)
        start = _trim(text, cut, end)[0]
    yield start, end


def _break_at(text: str, lo: int, hi: int) -> int | None:
    """The best place to cut in text[lo:hi]: a paragraph end, a line end, a sentence end."""
    for sep in ("\n\n", "\n"):
        if (pos := text.rfind(sep, lo, hi)) >= 0:
            return pos
    pos = max(text.rfind(p, lo, hi - 1) for p in ("。", "！", "？", ". ", "! ", "? "))
    if pos < 0:
        return None
    pos += 1
    while pos < hi and text[pos] in "”」』\"'）) ":
        pos += 1  # closing quotes stay with their sentence; spaces go
    return pos
