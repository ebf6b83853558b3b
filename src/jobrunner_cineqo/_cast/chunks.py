"""Chunking a novel for the model: chapters packed into chunks within a token budget.

Token estimate (`estimate_tokens`): every CJK character (ideographs, kana, hangul, CJK and
full-width punctuation) counts as one token, all other characters together as one token per four,
rounded up. Real tokenizers give roughly 0.7-1.5 tokens per Chinese character and ~4 characters
per English token, so this is a fair, cheap, offline stand-in (no tiktoken).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from typing import Protocol

import attrs

_WIDE = re.compile(
    "[\u1100-\u11ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
    "\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff]"
)
# Spaces and name separators (哈利·波特, "Mr. Darcy") do not distinguish two names.
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.\s)")


def estimate_tokens(text: str) -> int:
    """Cheap token estimate: CJK characters count 1 each, other text len/4 rounded up."""
    wide, other = _counts(text)
    return wide + math.ceil(other / 4)


# --- chapters and chunks -----------------------------------------------------------------


class ChapterLike(Protocol):
    """What the chunker needs from a chapter (the chapter splitter's class fits)."""

    @property
    def index(self) -> int: ...

    @property
    def title(self) -> str: ...

    @property
    def text(self) -> str: ...


@attrs.frozen(kw_only=True)
class ChapterText:
    """A minimal `ChapterLike`."""

    index: int
    title: str
    text: str


@attrs.frozen(kw_only=True)
class ChunkPart:
    """One chapter, or a paragraph-aligned piece of one, as it appears in a chunk."""

    chapter: int
    heading: str
    body: str

    @property
    def rendered(self) -> str:
        return f"{self.heading}\n{self.body}" if self.body else self.heading

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.rendered)


@attrs.frozen(kw_only=True)
class Chunk:
    """The text of one LLM call: whole chapters, or a piece of a long one."""

    index: int
    parts: tuple[ChunkPart, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(part.rendered for part in self.parts)

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.text)

    @property
    def chapters(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(part.chapter for part in self.parts))

    @property
    def digest(self) -> str:
        """Identifies the chunk's text, so a resumed job never reuses a stale answer."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def chunk_chapters(chapters: Iterable[ChapterLike], budget: int = 6000) -> list[Chunk]:
    """Pack chapters into chunks of at most `budget` estimated tokens, in order.

    A chapter that fits the budget is never cut: it joins the current chunk if there is room,
    else starts the next one. A larger chapter is cut at paragraph boundaries (a paragraph larger
    than the budget at sentence ends, then anywhere), its first piece filling the room left in
    the current chunk, so chunks stay full and few. Blank lines and indentation are dropped.
    """
    if budget < 64:
        raise ValueError(f"chunk budget must be at least 64 tokens, got {budget}")
    packer = _Packer(budget=budget)
    for chapter in chapters:
        heading = f"[Chapter {chapter.index}] {chapter.title.strip()}".rstrip()
        paragraphs = [line.strip() for line in chapter.text.splitlines() if line.strip()]
        whole = ChunkPart(chapter=chapter.index, heading=heading, body="\n".join(paragraphs))
        if whole.tokens <= budget:
            packer.add(whole)
        else:
            packer.add_cut(chapter.index, heading, paragraphs)
    return packer.finish()


@attrs.define
class _Packer:
    """Fills chunks part by part, counting exactly what `estimate_tokens` of the chunk will say."""

    budget: int
    chunks: list[Chunk] = attrs.Factory(list)
    parts: list[ChunkPart] = attrs.Factory(list)
    wide: int = 0  # CJK characters in the current chunk's text
    other: int = 0  # all other characters

    def fits(self, wide: int, other: int) -> bool:
        """Whether a part of this many characters fits into the current chunk."""
        other += self.other + (2 if self.parts else 0)  # the "\n\n" before it
        return self.wide + wide + math.ceil(other / 4) <= self.budget

    def room(self) -> int:
        return self.budget - self.wide - math.ceil((self.other + (2 if self.parts else 0)) / 4)

    def add(self, part: ChunkPart) -> None:
        wide, other = _counts(part.rendered)
        if not self.fits(wide, other):
            self.flush()
        self.wide += wide
        self.other += other + (2 if self.parts else 0)
        self.parts.append(part)

    def add_cut(self, chapter: int, heading: str, paragraphs: list[str]) -> None:
        continued = f"{heading} (cont.)"
        if self.room() < self.budget // 4:
            self.flush()  # not worth starting the chapter in a sliver of a chunk
        head = heading
        body: list[str] = []
        wide, other = _counts(head)
        for unit in _units(paragraphs, self.budget - estimate_tokens(continued) - 1):
            unit_wide, unit_other = _counts(unit)
            unit_other += 1  # its "\n"
            if not self.fits(wide + unit_wide, other + unit_other):
                if body:
                    self.add(ChunkPart(chapter=chapter, heading=head, body="\n".join(body)))
                    head, body = continued, []
                self.flush()
                wide, other = _counts(head)
            body.append(unit)
            wide, other = wide + unit_wide, other + unit_other
        self.add(ChunkPart(chapter=chapter, heading=head, body="\n".join(body)))

    def flush(self) -> None:
        if self.parts:
            self.chunks.append(Chunk(index=len(self.chunks), parts=tuple(self.parts)))
        self.parts, self.wide, self.other = [], 0, 0

    def finish(self) -> list[Chunk]:
        self.flush()
        return self.chunks


def _counts(text: str) -> tuple[int, int]:
    """(CJK characters, other characters) in `text`."""
    other = len(_WIDE.sub("", text))
    return len(text) - other, other


def _units(paragraphs: Iterable[str], room: int) -> Iterable[str]:
    """Paragraphs, with any paragraph over `room` cut at sentence ends, then by length."""
    for paragraph in paragraphs:
        if estimate_tokens(paragraph) <= room:
            yield paragraph
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            # estimate_tokens(s) <= len(s), so a cut every `room` characters always fits.
            for start in range(0, len(sentence), room):
                piece = sentence[start : start + room]
                if piece:
                    yield piece


# --- extracted characters and merging ----------------------------------------------------
