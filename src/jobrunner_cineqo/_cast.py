"""Pure logic of character extraction: chunking, merging, mention counting, ranking.

No I/O here; `_llm.py` feeds chunks to the model and `build_cast` turns its answers into a cast.

Token estimate (`estimate_tokens`): every CJK character (ideographs, kana, hangul, CJK and
full-width punctuation) counts as one token, all other characters together as one token per four,
rounded up. Real tokenizers give roughly 0.7-1.5 tokens per Chinese character and ~4 characters
per English token, so this is a fair, cheap, offline stand-in (no tiktoken).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import attrs

ROLES: tuple[str, ...] = ("protagonist", "antagonist", "supporting", "minor")
DESCRIPTIVE_FIELDS: tuple[str, ...] = (
    "age",
    "appearance",
    "clothing",
    "personality",
    "visual_prompt",
)

_WIDE = re.compile(
    "[\u1100-\u11ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
    "\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff]"
)
# Spaces and name separators (哈利·波特, "Mr. Darcy") do not distinguish two names.
_NAME_NOISE = re.compile(r"[\s·•・.\-_'\"]+")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.\s)")
_WORDISH = re.compile(r"[A-Za-z0-9]")


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


@attrs.frozen(kw_only=True)
class CharacterDraft:
    """One character as one chunk's answer describes it."""

    name: str
    aliases: tuple[str, ...] = ()
    gender: str | None = None
    age: str | None = None
    appearance: str | None = None
    clothing: str | None = None
    personality: str | None = None
    role: str | None = None
    first_chapter: int | None = None
    visual_prompt: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["aliases"] = list(self.aliases)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CharacterDraft:
        fields = {f.name for f in attrs.fields(cls)}
        values = {key: value for key, value in data.items() if key in fields}
        values["aliases"] = tuple(values.get("aliases") or ())
        return cls(**values)


def normalise_name(name: str) -> str:
    """The form two names are compared in: NFKC, case-folded, without spaces and dots."""
    return _NAME_NOISE.sub("", unicodedata.normalize("NFKC", name).casefold())


def merge_keys(draft: CharacterDraft) -> set[str]:
    """The normalised names a draft can be joined to another on."""
    keys = {normalise_name(draft.name)}
    # A one-character alias (猴, 王) is too ambiguous to join two characters on.
    keys.update(key for key in map(normalise_name, draft.aliases) if len(key) >= 2)
    keys.discard("")
    return keys


def group_drafts(drafts: Sequence[CharacterDraft]) -> list[list[CharacterDraft]]:
    """Union-find: drafts sharing a normalised name or alias form a group; first-seen order."""
    parent = list(range(len(drafts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, draft in enumerate(drafts):
        for key in merge_keys(draft):
            j = owner.setdefault(key, i)
            root_i, root_j = find(i), find(j)
            if root_i != root_j:
                parent[max(root_i, root_j)] = min(root_i, root_j)
    groups: dict[int, list[CharacterDraft]] = {}
    for i, draft in enumerate(drafts):
        groups.setdefault(find(i), []).append(draft)
    return list(groups.values())


def merge_group(group: Sequence[CharacterDraft]) -> CharacterDraft:
    """One draft from many: the most used name, all aliases, the longest of each description."""
    name = Counter(draft.name for draft in group).most_common(1)[0][0]
    seen = {normalise_name(name)}
    aliases: list[str] = []
    for alias in (alias for draft in group for alias in draft.names):
        key = normalise_name(alias)
        if key and key not in seen:
            seen.add(key)
            aliases.append(alias)
    chapters = [d.first_chapter for d in group if d.first_chapter is not None]
    longest = {
        field: max((getattr(d, field) or "" for d in group), key=len) or None
        for field in DESCRIPTIVE_FIELDS
    }
    return CharacterDraft(
        name=name,
        aliases=tuple(aliases),
        gender=_vote(d.gender for d in group),
        role=_vote((d.role for d in group), preference=ROLES),
        first_chapter=min(chapters, default=None),
        **longest,
    )


def _vote(values: Iterable[str | None], preference: Sequence[str] = ()) -> str | None:
    """The most frequent value; ties go to the earlier one in `preference`, then first seen."""
    counts = Counter(value for value in values if value)
    if not counts:
        return None
    rank = {value: i for i, value in enumerate(preference)}
    order = {value: i for i, value in enumerate(counts)}
    return min(counts, key=lambda v: (-counts[v], rank.get(v, len(rank)), order[v]))


def merge_characters(drafts: Sequence[CharacterDraft]) -> list[CharacterDraft]:
    """Merge drafts that share a name or alias, in first-seen order."""
    return [merge_group(group) for group in group_drafts(drafts)]


# --- mentions and ranking ----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MentionStats:
    mentions: int
    first_chapter: int | None


def _surface_forms(character: CharacterDraft) -> list[str]:
    names = [character.name.strip()]
    # As when merging: one-character aliases would count every stray 王 or 猴.
    names += [alias.strip() for alias in character.aliases if len(alias.strip()) >= 2]
    return [name for name in names if name]


def _mention_pattern(surfaces: Iterable[str]) -> re.Pattern[str]:
    # Longest first: at any position the regex tries 孙悟空 before 悟空, so a mention counts once.
    alternatives = []
    for surface in sorted(surfaces, key=lambda s: (-len(s), s)):
        piece = re.escape(surface)
        if _WORDISH.match(surface[0]):
            piece = r"(?<![A-Za-z0-9])" + piece
        if _WORDISH.match(surface[-1]):
            piece += r"(?![A-Za-z0-9])"
        alternatives.append(piece)
    return re.compile("|".join(alternatives))


def count_mentions(
    characters: Sequence[CharacterDraft], chapters: Iterable[ChapterLike]
) -> list[MentionStats]:
    """Count each character's names and aliases in the chapters' text, in one regex pass each.

    Overlapping forms count once, longest match first (孙悟空 is not also a 悟空). Chapter titles
    are not counted. Also gives the first chapter each character is mentioned in.
    """
    owner: dict[str, int] = {}
    for i, character in enumerate(characters):
        for surface in _surface_forms(character):
            owner.setdefault(surface, i)
    counts = [0] * len(characters)
    first: list[int | None] = [None] * len(characters)
    if owner:
        pattern = _mention_pattern(owner)
        for chapter in chapters:
            for match in pattern.finditer(chapter.text):
                i = owner[match.group()]
                counts[i] += 1
                if first[i] is None:
                    first[i] = chapter.index
    return [MentionStats(mentions=c, first_chapter=f) for c, f in zip(counts, first, strict=True)]


@attrs.frozen(kw_only=True)
class CastCharacter:
    """A character of the final cast."""

    name: str
    aliases: tuple[str, ...]
    gender: str | None
    age: str | None
    appearance: str | None
    clothing: str | None
    personality: str | None
    role: str | None
    first_chapter: int | None
    mentions: int
    visual_prompt: str | None

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["aliases"] = list(self.aliases)
        return data


def rank_characters(
    characters: Sequence[CharacterDraft],
    stats: Sequence[MentionStats],
    *,
    min_mentions: int = 2,
    max_characters: int = 40,
) -> list[CastCharacter]:
    """Most mentioned first; drop those under `min_mentions`; keep at most `max_characters`."""
    cast = []
    for draft, stat in zip(characters, stats, strict=True):
        if stat.mentions < min_mentions:
            continue
        first = draft.first_chapter
        # The text is the better witness when the model said nothing or said too late.
        if first is None or (stat.first_chapter is not None and stat.first_chapter < first):
            first = stat.first_chapter
        values = attrs.asdict(draft, recurse=False)
        values.update(first_chapter=first, mentions=stat.mentions)
        cast.append(CastCharacter(**values))
    cast.sort(key=lambda c: (-c.mentions, c.first_chapter is None, c.first_chapter or 0, c.name))
    return cast[:max_characters]


# --- results -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Usage:
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            llm_calls=self.llm_calls + other.llm_calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


@attrs.frozen(kw_only=True)
class ChunkExtraction:
    """One chunk's answer; its JSON form is the checkpoint a retried job resumes from."""

    chunk: int
    digest: str
    chapters: tuple[int, ...]
    characters: tuple[CharacterDraft, ...] = ()
    warnings: tuple[str, ...] = ()
    usage: Usage = Usage()

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk": self.chunk,
            "digest": self.digest,
            "chapters": list(self.chapters),
            "characters": [c.to_json() for c in self.characters],
            "warnings": list(self.warnings),
            "usage": attrs.asdict(self.usage),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChunkExtraction:
        return cls(
            chunk=int(data["chunk"]),
            digest=str(data["digest"]),
            chapters=tuple(int(c) for c in data["chapters"]),
            characters=tuple(CharacterDraft.from_json(c) for c in data["characters"]),
            warnings=tuple(str(w) for w in data["warnings"]),
            usage=Usage(**data["usage"]),
        )


@attrs.frozen(kw_only=True)
class CastOptions:
    chunk_tokens: int = 6000
    min_mentions: int = 2
    max_characters: int = 40


@attrs.frozen(kw_only=True)
class CastResult:
    characters: tuple[CastCharacter, ...]
    usage: Usage
    chunks: int
    warnings: tuple[tuple[int, str], ...]  # (chunk index, message)

    def to_json(self) -> dict[str, Any]:
        return {
            "characters": [c.to_json() for c in self.characters],
            "usage": {**attrs.asdict(self.usage), "chunks": self.chunks},
            "warnings": [{"chunk": chunk, "message": text} for chunk, text in self.warnings],
        }


def build_cast(
    chapters: Sequence[ChapterLike],
    extractions: Sequence[ChunkExtraction],
    options: CastOptions | None = None,
) -> CastResult:
    """Merge every chunk's characters, count their mentions, rank them, add up usage."""
    options = options or CastOptions()
    drafts = [draft for extraction in extractions for draft in extraction.characters]
    merged = merge_characters(drafts)
    stats = count_mentions(merged, chapters)
    cast = rank_characters(
        merged, stats, min_mentions=options.min_mentions, max_characters=options.max_characters
    )
    usage = sum((extraction.usage for extraction in extractions), Usage())
    warnings = tuple((e.chunk, text) for e in extractions for text in e.warnings)
    return CastResult(
        characters=tuple(cast), usage=usage, chunks=len(extractions), warnings=warnings
    )
