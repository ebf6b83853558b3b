"""Tables of contents among the headings found in a novel: which headings are only entries of
a contents list, and where that list is in the text (pure).

A table of contents is a run of at least three headings that are entries: headings with
nothing under them (no letters before the next heading), or with one or two short lines under
them (a subtitle, a page number, the book's title line after the list) whose heading recurs
elsewhere in the book — and then the headings right after the run repeat it (or, for a list at
the end, came before it), else they are short chapters. Around a run:

- the run ends where the numbering restarts at its first entry ("第一回" listed, then "第一回"
  itself), so a real heading that happens to have nothing under it (a volume heading right
  before its first chapter, a one-line prologue) stays a heading;
- a volume heading above its own contents list (one list per volume) stays a heading, and so
  does one right below a list, when it occurs only once;
- before any kept heading, a trailing unnumbered entry that recurs later ("Epilogue") belongs
  to the list even though text follows it (that text is front matter anyway).

Where the list is (`TocSpan`, from a "目录"/"Contents" line above it to the next heading) decides
what becomes of its text: before the first chapter it is front matter, after the last one back
matter, between chapters it is left out (it only repeats the chapter titles).
"""

from __future__ import annotations

import re
from collections import Counter

import attrs

from .headings import _has_letters, _Heading, _trim

_MIN_ENTRIES = 3
_NOTE_CHARS = 80  # what may stand under an entry: a subtitle, a page number, a title line
_NOTE_LINES = 2
_NONBLANK_LINE = re.compile(r"^.*\S", re.M)
_PROSE = re.compile("[，。；！？]")  # a line of a short chapter, not a note under an entry
_SENTENCE_END = "。！？…”」』!?\"'"
_TOC_TITLE = re.compile(
    r"[ \t\u3000]*(?:(?:总|本卷|本书|章节)?目[ \t\u3000]*[录錄]|(?:table of )?contents)"
    r"[ \t\u3000]*[:：]?[ \t\u3000]*",
    re.IGNORECASE,
)


@attrs.frozen(kw_only=True)
class TocSpan:
    """Where a table of contents stands: `text[start:end]`."""

    start: int
    end: int


def drop_toc(
    text: str, heads: list[_Heading], hi: int
) -> tuple[list[_Heading], list[TocSpan], list[str]]:
    """The headings that are not contents entries, where the skipped lists are, and warnings."""
    facts = _Facts.of(text, heads, hi)
    keep: list[_Heading] = []
    spans: list[TocSpan] = []
    warnings: list[str] = []
    i = 0
    while i < len(heads):
        if not facts.entry[i]:
            keep.append(heads[i])
            i += 1
            continue
        j = facts.run_end(i)
        while i < j and facts.lone_volume(i):  # a volume heading above its own contents list
            keep.append(heads[i])
            i += 1
        j = facts.list_end(i, j)
        if j - i < _MIN_ENTRIES:
            keep.extend(heads[i:j])
            i = j
            continue
        if not all(facts.empty[i:j]) and not facts.listed_again(i, j):
            # Short chapters, not entries with notes: look again for entries with nothing under.
            facts.mark_entries(i, j, facts.empty[i:j])
            continue
        if not keep:
            j = facts.absorb_recurring(j)
        spans.append(TocSpan(start=_title_above(text, heads[i].start), end=facts.ends[j - 1]))
        first, last = heads[i].title, heads[j - 1].title
        warnings.append(f"skipped a table of contents of {j - i} entries ({first} … {last})")
        i = j
    return keep, spans, warnings


@attrs.define
class _Facts:
    """What `drop_toc` needs to know about each heading."""

    heads: list[_Heading]
    ends: list[int]  # where each heading's text ends: the next heading, or the end
    counts: Counter[tuple[int, str, int | str]]
    first_seen: dict[tuple[int, str, int | str], int]
    last_seen: dict[tuple[int, str, int | str], int]
    empty: list[bool]  # nothing under the heading
    entry: list[bool]  # nothing, or a note under a heading that recurs

    @classmethod
    def of(cls, text: str, heads: list[_Heading], hi: int) -> _Facts:
        ends = [h.start for h in heads[1:]] + [hi] if heads else []
        counts = Counter(h.key for h in heads)
        first_seen: dict[tuple[int, str, int | str], int] = {}
        for i, h in enumerate(heads):
            first_seen.setdefault(h.key, i)
        empty = [not _has_letters(text, h.body, end) for h, end in zip(heads, ends, strict=True)]
        entry = [
            e or (counts[h.key] > 1 and _is_note(text, h.body, end))
            for h, end, e in zip(heads, ends, empty, strict=True)
        ]
        last_seen = {h.key: i for i, h in enumerate(heads)}
        return cls(heads, ends, counts, first_seen, last_seen, empty, entry)

    # The last run found, (start, end), while `entry` is unchanged: a run that yields one
    # heading at a time (thousands of "第一章" with nothing under them) is walked once, not
    # once per heading, which was quadratic in the number of headings.
    _run: tuple[int, int] = attrs.field(default=(0, 0), init=False)

    def run_end(self, i: int) -> int:
        start, j = self._run
        if not start <= i < j:
            j = i
            while j < len(self.heads) and self.entry[j]:
                j += 1
            self._run = (i, j)
        return j

    def mark_entries(self, i: int, j: int, entries: list[bool]) -> None:
        """Say again which of heads[i:j] are entries."""
        self.entry[i:j] = entries
        self._run = (0, 0)

    def lone_volume(self, i: int) -> bool:
        return self.heads[i].level == 0 and self.counts[self.heads[i].key] == 1

    def listed_again(self, i: int, j: int) -> bool:
        """The headings after the run repeat it (or, for a list at the end, came before it)."""
        if j < len(self.heads):
            return self.heads[j].key == self.heads[i].key
        return self.first_seen[self.heads[i].key] < i

    def list_end(self, i: int, j: int) -> int:
        """Where the list in the run heads[i:j] ends: at a restart of its numbering, before a
        volume heading that occurs only once."""
        if i < j:
            j = _restart(self.heads, i, j)
        while j - i > _MIN_ENTRIES and self.lone_volume(j - 1):
            j -= 1  # a volume heading right below the list: the next round keeps it
        return j

    def absorb_recurring(self, j: int) -> int:
        """A trailing "Epilogue" entry has text after it (the next section) but recurs later."""
        heads = self.heads
        while j < len(heads) and heads[j].number is None and self.last_seen[heads[j].key] > j:
            j += 1
        return j


def _is_note(text: str, start: int, end: int) -> bool:
    """One or two short lines that are not prose: a subtitle, the book's title after the list."""
    start, end = _trim(text, start, end)
    if end - start > _NOTE_CHARS or len(_NONBLANK_LINE.findall(text, start, end)) > _NOTE_LINES:
        return False
    return _PROSE.search(text, start, end) is None and text[end - 1] not in _SENTENCE_END


def _restart(heads: list[_Heading], i: int, j: int) -> int:
    """Where the numbering restarts at the run's first entry: the list ends there.

    Not when the heading after the run restarts it once more: then the part after the restart
    is a list too (volumes numbered from 1 each, listed one after another).
    """
    first = heads[i].key
    for m in range(i + 1, j):
        if heads[m].key == first:
            if j < len(heads) and heads[j].key == heads[m].key:
                return j
            return m
    return j


def _title_above(text: str, start: int) -> int:
    """Where a "目录"/"Contents" line right above `start` (blank lines apart) begins, else start."""
    end = start
    while end > 0 and text[end - 1] in " \t\u3000\n":
        end -= 1
    line = text.rfind("\n", 0, end) + 1
    if end > line and _TOC_TITLE.fullmatch(text, line, end):
        return line
    return start
