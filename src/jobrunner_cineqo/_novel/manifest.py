"""Where `novel.split` stores a novel's chapters and manifest, and how `character.extract`
reads them back: the one format the two jobs share.

    novels/{novel_id}/chapters/{index:04d}.txt   one chapter's text, UTF-8
    novels/{novel_id}/manifest.json              {"job_id", …, "chapters": [entry, …]}

An entry is `chapter_entry(…)`: index, title, number, volume, kind, part, chars, key, url.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jobrunner import PayloadError

from .._concurrency import bounded_each
from .._outcomes import storage_errors
from .._storage import ObjectNotFound, Storage
from .chapters import Chapter

if TYPE_CHECKING:
    from .._settings import CineqoSettings

READERS = 8  # chapters read at once


def manifest_key(novel_id: str) -> str:
    return f"novels/{novel_id}/manifest.json"


def chapter_key(novel_id: str, index: int) -> str:
    return f"novels/{novel_id}/chapters/{index:04d}.txt"


def chapter_entry(chapter: Chapter, key: str, url: str | None) -> dict[str, Any]:
    """A chapter's entry in the manifest (and in `novel.split`'s result)."""
    return {
        "index": chapter.index,
        "title": chapter.title,
        "number": chapter.number,
        "volume": chapter.volume,
        "kind": chapter.kind,
        "part": chapter.part,
        "chars": chapter.chars,
        "key": key,
        "url": url,
    }


async def read_manifest(
    key: str, storage: Storage, settings: CineqoSettings, attempt: int
) -> dict[str, Any]:
    """The manifest stored under `key`; a `PayloadError` if there is none or it is not one."""
    with storage_errors(settings, attempt):
        try:
            raw = await storage.get(key)
        except ObjectNotFound:
            raise PayloadError(
                f"no novel.split manifest is stored under {key!r}; has the split job completed?"
            ) from None
    try:
        manifest: object = json.loads(raw)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or not _are_entries(manifest.get("chapters")):
        raise PayloadError(f"{key!r} is not a novel.split manifest")
    return manifest


def _are_entries(chapters: object) -> bool:
    return isinstance(chapters, list) and all(
        isinstance(entry, dict)
        and isinstance(entry.get("index"), int)
        and isinstance(entry.get("key"), str)
        for entry in chapters
    )


async def read_chapter_texts(
    entries: list[dict[str, Any]], storage: Storage, settings: CineqoSettings, attempt: int
) -> dict[int, str]:
    """Each entry's chapter text, by index (READERS at a time); a missing one is a payload
    error, since the manifest promised it."""
    texts: dict[int, str] = {}

    async def read(entry: dict[str, Any]) -> None:
        try:
            data = await storage.get(entry["key"])
        except ObjectNotFound:
            raise PayloadError(f"chapter {entry['index']} is missing from storage") from None
        texts[entry["index"]] = data.decode("utf-8", "replace")

    with storage_errors(settings, attempt):
        await bounded_each(entries, read, limit=READERS)
    return texts
