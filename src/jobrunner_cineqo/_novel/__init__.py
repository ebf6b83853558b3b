"""A novel's text, shared by `novel.split` and `character.extract`. Pure logic: decoding text
(`decode`), chapter headings (`headings`, `numerals`), tables of contents (`toc`) and chapters
(`chapters`); EPUB and DOCX files (`archive` for hostile ZIPs and XML, `xhtml`, `epub`, `docx`,
and `marks` for the chapters such a book marks itself); any format in, text and chapters out
(`novel`). Reading a novel for a handler (`input`, `reading`); the stored chapters and manifest
(`manifest`).
"""

from .chapters import DEFAULT_MAX_CHAPTER_CHARS, Chapter, Outline
from .input import NovelInput
from .manifest import (
    chapter_entry,
    chapter_key,
    manifest_key,
    read_chapter_texts,
    read_manifest,
)
from .novel import Novel, load_novel
from .reading import read_novel

__all__ = (
    "DEFAULT_MAX_CHAPTER_CHARS",
    "Chapter",
    "Novel",
    "NovelInput",
    "Outline",
    "chapter_entry",
    "chapter_key",
    "load_novel",
    "manifest_key",
    "read_chapter_texts",
    "read_manifest",
    "read_novel",
)
