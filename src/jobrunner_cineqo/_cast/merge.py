"""Pure logic of character extraction: merging, mention counting, ranking.

No I/O here; `llm.py` feeds chunks (from `chunks.py`) to the model and `build_cast` turns its
answers into a cast.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from .chunks import ChapterLike

ROLES: tuple[str, ...] = ("protagonist", "antagonist", "supporting", "minor")
DESCRIPTIVE_FIELDS: tuple[str, ...] = (
    "age",
    "appearance",
    "clothing",
    "personality",
    "visual_prompt",
)

_WORDISH = re.compile(r"[A-Za-z0-9]")
_NAME_NOISE = re.compile(r"[\s·•・.\-_'\"]+")


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
