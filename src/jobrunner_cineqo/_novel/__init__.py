"""A novel's text, shared by `novel.split` and `character.extract`: decoding (`decode`),
chapter headings (`headings`, `numerals`) and chapters (`chapters`) as pure logic; reading a
novel for a handler (`input`, `reading`); and the stored chapters and manifest (`manifest`).
"""

from .chapters import DEFAULT_MAX_CHAPTER_CHARS, Chapter, Outline
from .input import NOVEL_KEYS, NovelInput, novel_input
from .manifest import (
    chapter_entry,
    chapter_key,
    manifest_key,
    read_chapter_texts,
    read_manifest,
)
from .reading import Novel, read_novel

__all__ = (
    "DEFAULT_MAX_CHAPTER_CHARS",
    "NOVEL_KEYS",
    "Chapter",
    "Novel",
    "NovelInput",
    "Outline",
    "chapter_entry",
    "chapter_key",
    "manifest_key",
    "novel_input",
    "read_chapter_texts",
    "read_manifest",
    "read_novel",
)
