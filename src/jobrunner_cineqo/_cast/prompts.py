"""Prompts, the JSON schema of an answer, and reading the model's answer back (pure).

Prompts are kept frugal on purpose: the field guide sits once in the system message, the
schema carries no descriptions, and known characters travel as `name(alias/alias)` only.

Messages and `response_format` are typed as the openai SDK's request types; the SDK itself is
never imported here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .chunks import Chunk
from .merge import ROLES, CharacterDraft, merge_keys, normalise_name

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam
    from openai.types.shared_params import ResponseFormatJSONObject, ResponseFormatJSONSchema

ResponseMode = Literal["json_schema", "json_object"]
RESPONSE_MODES: tuple[ResponseMode, ...] = ("json_schema", "json_object")
SCHEMA_NAME = "cast_extraction"
FIELDS: tuple[str, ...] = (
    "name",
    "aliases",
    "gender",
    "age",
    "appearance",
    "clothing",
    "personality",
    "role",
    "first_chapter",
    "visual_prompt",
)
_TEXT_FIELDS = ("gender", "age", "appearance", "clothing", "personality", "visual_prompt")

_SYSTEM = (
    "You extract the cast of a novel from one excerpt. Answer with JSON "
    '{"characters":[...]}: one entry per named character who appears or acts in the excerpt. '
    "If a character is in the known list, use exactly its name; put the other names, titles "
    "and nicknames the excerpt uses for them in aliases (never generic words shared by many "
    "people). Describe only what the text supports, else null: gender, age, appearance, "
    "clothing, personality in the novel's language; role is protagonist, antagonist, "
    "supporting or minor; first_chapter is the [Chapter N] number where they first appear "
    "here; visual_prompt is one English sentence for an image model (look, clothing, no names)."
)
_JSON_OBJECT_KEYS = " Every entry has exactly these keys: " + ", ".join(FIELDS) + "."


class UnusableAnswer(ValueError):
    """The model's answer cannot be used: refused, cut off, filtered, not JSON, wrong shape."""


def character_schema() -> dict[str, Any]:
    """The strict JSON schema of an answer: every field required, optional ones nullable."""

    special: dict[str, dict[str, Any]] = {
        "name": {"type": "string"},
        "aliases": {"type": "array", "items": {"type": "string"}},
        "role": {"type": ["string", "null"], "enum": [*ROLES, None]},
        "first_chapter": {"type": ["integer", "null"]},
    }
    character = {
        "type": "object",
        "properties": {f: special.get(f, {"type": ["string", "null"]}) for f in FIELDS},
        "required": list(FIELDS),
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"characters": {"type": "array", "items": character}},
        "required": ["characters"],
        "additionalProperties": False,
    }


def response_format(mode: ResponseMode) -> ResponseFormatJSONObject | ResponseFormatJSONSchema:
    """The `response_format` request field for a mode."""
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "schema": character_schema(), "strict": True},
        }
    raise ValueError(f"unknown response mode {mode!r}; expected one of {RESPONSE_MODES}")


Roster = Sequence[tuple[str, Sequence[str]]]


@attrs.define
class _Group:
    first: int  # sequence number of its first draft: groups keep first-seen order
    drafts: int = 0
    keys: set[str] = attrs.Factory(set)
    names: dict[str, tuple[int, int]] = attrs.Factory(dict)  # name -> (count, first seen)
    aliases: dict[str, tuple[int, int, str]] = attrs.Factory(dict)  # key -> (seen, pos, name)

    def absorb(self, other: _Group) -> None:
        self.first = min(self.first, other.first)
        self.drafts += other.drafts
        self.keys |= other.keys
        for name, (count, seen) in other.names.items():
            mine = self.names.get(name, (0, seen))
            self.names[name] = (mine[0] + count, min(mine[1], seen))
        for key, entry in other.aliases.items():
            self.aliases[key] = min(self.aliases.get(key, entry), entry)

    def take(self, draft: CharacterDraft, seq: int) -> None:
        self.drafts += 1
        self.keys |= merge_keys(draft)
        count, seen = self.names.get(draft.name, (0, seq))
        self.names[draft.name] = (count + 1, seen)
        for pos, alias in enumerate(draft.names):
            key = normalise_name(alias)
            if key and key not in self.aliases:
                self.aliases[key] = (seq, pos, alias)

    def entry(self, alias_limit: int) -> tuple[str, tuple[str, ...]]:
        name = min(self.names, key=lambda n: (-self.names[n][0], self.names[n][1]))
        canonical = normalise_name(name)
        ordered = sorted(self.aliases.items(), key=lambda item: item[1])
        aliases = [entry[2] for key, entry in ordered if key != canonical]
        return name, tuple(aliases[:alias_limit])


@attrs.define
class KnownCast:
    """The characters seen so far, merged as answers arrive, for the next prompts.

    Groups exactly as `merge_characters` does (shared normalised name or alias), but
    incrementally, so building each prompt does not re-merge every earlier answer.
    """

    _groups: dict[int, _Group] = attrs.Factory(dict)
    _owner: dict[str, int] = attrs.Factory(dict)  # normalised key -> group id
    _seq: int = 0

    def add(self, drafts: Iterable[CharacterDraft]) -> None:
        for draft in drafts:
            seq, self._seq = self._seq, self._seq + 1
            keys = merge_keys(draft)
            joined = sorted({self._owner[key] for key in keys if key in self._owner})
            group = _Group(first=seq)
            for gid in joined:
                group.absorb(self._groups.pop(gid))
            group.take(draft, seq)
            for key in group.keys:
                self._owner[key] = group.first
            self._groups[group.first] = group

    def roster(self, limit: int = 40, alias_limit: int = 3) -> list[tuple[str, tuple[str, ...]]]:
        """(canonical name, first aliases) of the `limit` most often seen characters."""
        ranked = sorted(self._groups.values(), key=lambda g: (-g.drafts, g.first))[:limit]
        return [group.entry(alias_limit) for group in ranked]


def format_known(roster: Roster) -> str:
    """Known characters, compact: `孙悟空(美猴王/行者); 唐僧`."""
    entries = (f"{name}({'/'.join(aliases)})" if aliases else name for name, aliases in roster)
    return "; ".join(entries)


def build_messages(
    chunk: Chunk, roster: Roster, mode: ResponseMode
) -> list[ChatCompletionMessageParam]:
    """The chat messages for one chunk."""
    system = _SYSTEM + (_JSON_OBJECT_KEYS if mode == "json_object" else "")
    user = chunk.text
    if roster:
        user = f"Known characters: {format_known(roster)}\n\n{user}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_answer(content: str | None) -> tuple[list[CharacterDraft], list[str]]:
    """Read an answer into drafts plus notes about entries that had to be dropped.

    Lenient about detail (a missing field is null, a bare list is accepted, numbers in text
    fields become text) because json_object mode promises no schema; strict about the whole.
    """
    if not content or not content.strip():
        raise UnusableAnswer("empty answer")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise UnusableAnswer(f"answer is not JSON ({exc.msg} at char {exc.pos})") from None
    entries = data.get("characters") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise UnusableAnswer('answer has no "characters" list')
    drafts: list[CharacterDraft] = []
    dropped = 0
    for entry in entries:
        draft = _draft(entry)
        if draft is None:
            dropped += 1
        else:
            drafts.append(draft)
    notes = [f"dropped {dropped} entries without a name"] if dropped else []
    return drafts, notes


def _draft(entry: object) -> CharacterDraft | None:
    if not isinstance(entry, dict):
        return None
    name = _text(entry.get("name"))
    if name is None:
        return None
    role = _text(entry.get("role"))
    return CharacterDraft(
        name=name,
        aliases=_aliases(entry.get("aliases"), name),
        role=role.lower() if role and role.lower() in ROLES else None,
        first_chapter=_chapter(entry.get("first_chapter")),
        **{field: _text(entry.get(field)) for field in _TEXT_FIELDS},
    )


def _text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _aliases(value: object, name: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    texts = (_text(item) for item in items)
    return tuple(dict.fromkeys(t for t in texts if t and t != name))


def _chapter(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
