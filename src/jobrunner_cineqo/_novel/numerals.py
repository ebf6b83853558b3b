"""Numbers as they appear in chapter headings: Chinese, Arabic, full-width, Roman, English words."""

from __future__ import annotations

import re

__all__ = ["parse_chinese", "parse_english_words", "parse_number", "parse_roman"]

_DIGITS = {
    "〇": 0, "零": 0, "一": 1, "壹": 1, "二": 2, "两": 2, "兩": 2, "贰": 2, "貳": 2,
    "三": 3, "叁": 3, "參": 3, "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "陸": 6,
    "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
}  # fmt: skip
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG_UNITS = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}
# Full-width digits become ASCII ones; int() would accept them too, but our regexes need one form.
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
_ARABIC_RUN = re.compile(r"[0-9]+")

_ROMAN = re.compile(r"M{0,4}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINALS = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
    "eighteenth", "nineteenth", "twentieth",
]  # fmt: skip
_WORDS = {w: i for i, w in enumerate(_ONES)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_WORDS |= {w: i + 1 for i, w in enumerate(_ORDINALS)}


def parse_chinese(s: str) -> int | None:
    """一百零一 → 101, 一百十八 → 118, 一零零 → 100 (digit by digit), 1百零1 → 101."""
    s = s.translate(_FULLWIDTH)
    if not s:
        return None
    if s.isdigit():
        return int(s)
    if not any(ch in _SMALL_UNITS or ch in _BIG_UNITS for ch in s):
        return _digit_by_digit(s)
    total = section = digit = 0
    pos = 0
    while pos < len(s):
        ch = s[pos]
        if m := _ARABIC_RUN.match(s, pos):
            digit = int(m.group())
            pos = m.end()
            continue
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch in _SMALL_UNITS:
            # A bare 十 means 10: "十八" and "一百十八" omit the leading 一.
            section += (digit or 1) * _SMALL_UNITS[ch]
            digit = 0
        elif ch in _BIG_UNITS:
            total = (total + section + digit) * _BIG_UNITS[ch]
            section = digit = 0
        else:
            return None
        pos += 1
    return total + section + digit


def _digit_by_digit(s: str) -> int | None:
    out = 0
    for ch in s:
        if ch.isdigit():
            out = out * 10 + int(ch)
        elif ch in _DIGITS:
            out = out * 10 + _DIGITS[ch]
        else:
            return None
    return out


def parse_roman(s: str) -> int | None:
    """IV → 4; None for anything that is not a well-formed Roman numeral."""
    s = s.upper()
    if not s or not _ROMAN.fullmatch(s):
        return None
    total = 0
    for ch, nxt in zip(s, [*s[1:], ""], strict=True):
        value = _ROMAN_VALUES[ch]
        total += -value if nxt and _ROMAN_VALUES[nxt] > value else value
    return total


def parse_english_words(s: str) -> int | None:
    """One → 1, Twenty-One → 21, One Hundred and Five → 105, First → 1 (up to 9999)."""
    words = [w for w in re.split(r"[\s-]+", s.lower()) if w and w != "and"]
    if not words:
        return None
    total = current = 0
    for word in words:
        if word in _WORDS:
            current += _WORDS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        elif word == "thousand":
            total += (current or 1) * 1000
            current = 0
        else:
            return None
    return total + current


def parse_number(s: str) -> int | None:
    """Any heading number: Arabic or full-width digits, Chinese, Roman or English words."""
    s = s.strip().translate(_FULLWIDTH)
    if s.isascii() and s.isdigit():
        return int(s)
    if s.isascii():
        return parse_roman(s) if _ROMAN.fullmatch(s.upper()) else parse_english_words(s)
    return parse_chinese(s)
