"""split_chapters on small excerpts: headings, traps, tables of contents, long and headless text."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from jobrunner_cineqo._novel.chapters import Chapter, Split, outline_chapters, split_chapters
from jobrunner_cineqo._novel.decode import decode_novel, normalise_text

DATA = Path(__file__).parents[1] / "data"
BODY = "他走了很远的路，终于到了山脚下。\n\n山下有一条河，河水很清。"


def read(name: str) -> str:
    return normalise_text((DATA / name).read_text(encoding="utf-8"))


def rows(split: Split) -> list[tuple[str, str, int | None, str | None]]:
    return [(c.kind, c.title, c.number, c.volume) for c in split.chapters]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_web_novel_excerpt() -> None:
    split = split_chapters(read("zh_webnovel.txt"))
    v1, v2 = "第一卷 潜龙在渊", "第二卷 飞龙在天"
    assert rows(split) == [
        ("front_matter", "", None, None),
        ("prologue", "楔子", None, None),
        ("chapter", "第一章 离家", 1, v1),  # "正文 " dropped, U+3000 and a tab tidied
        ("chapter", "【第2章】山路", 2, v1),
        ("chapter", "第三章 夜雨", 3, v1),
        ("chapter", "第一章 重逢", 1, v2),  # numbering restarts in a new volume: no warning
        ("chapter", "第二章 故人", 2, v2),  # title joined from the next line
        ("chapter", "第003章 旧信", 3, v2),
        ("chapter", "第3章 重复", 3, v2),
        ("chapter", "第六章 远方", 6, v2),
        ("extra", "番外一 小剧场", 1, v2),
        ("afterword", "后记", None, v2),
    ]
    assert split.volumes == (v1, v2)
    assert not split.fallback
    assert split.warnings == (
        "skipped a table of contents of 7 entries (第一卷 潜龙在渊 … 第二章 故人)",
        "duplicate chapter number 3 ('第3章 重复')",
        "gap in chapter numbers: 4–5 missing before '第六章 远方'",
    )
    front, _, first = split.chapters[:3]
    assert front.text.startswith("《星河旧梦》\n作者：无名氏")
    assert front.text.endswith("第二章 故人")
    # Heading-like phrases inside the chapter stay in its body.
    assert "第一次离开家" in first.text and "第二回合的比赛" in first.text
    assert "第一节课" in split.chapters[3].text
    assert "第三章的故事我们明天再讲" in split.chapters[4].text
    assert [c.index for c in split.chapters] == list(range(12))
    assert all(c.part is None and c.chars == len(c.text) for c in split.chapters)
    assert split.front_matter == (front,)
    assert split.story == split.chapters[1:]


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("zh_webnovel.txt", lambda t: b"\xef\xbb\xbf" + t.replace("\n", "\r\n").encode()),
        ("zh_webnovel.txt", lambda t: t.replace("\n", "\r").encode("gb18030")),
        ("zh_rulin_excerpt_trad.txt", lambda t: t.encode("big5")),
        ("en_voyage.txt", lambda t: t.replace("\n", "\t\r\n").encode("utf-16")),
    ],
    ids=["utf8-bom-crlf", "gb18030-cr", "big5", "utf16-tabs"],
)
def test_decoded_bytes_split_like_the_text(name: str, encode: Callable[[str], bytes]) -> None:
    text = read(name)
    decoded = decode_novel(encode((DATA / name).read_text(encoding="utf-8")))
    assert decoded.text == text
    assert split_chapters(decoded.text) == split_chapters(text)


def test_gutenberg_style_english_excerpt() -> None:
    split = split_chapters(read("en_voyage.txt"))
    assert rows(split) == [
        ("front_matter", "", None, None),
        ("prologue", "PROLOGUE", None, None),
        ("chapter", "Chapter One: The Harbour", 1, "PART ONE"),
        ("chapter", "Chapter Two A Letter", 2, "PART ONE"),
        (
            "chapter",
            "CHAPTER III. The Storm That Came in the Night and Would Not Leave the Coast",
            3,
            "PART TWO",
        ),
        ("chapter", "Chapter IV", 4, "PART TWO"),
        ("epilogue", "EPILOGUE", None, "PART TWO"),
        ("back_matter", "", None, None),
    ]
    assert split.warnings == ("skipped a table of contents of 7 entries (PROLOGUE … EPILOGUE)",)
    front, harbour, back = split.chapters[0], split.chapters[2], split.chapters[-1]
    assert "*** START OF THIS PROJECT GUTENBERG EBOOK" in front.text
    assert "Chapter and verse" in harbour.text and "chapter 4 of the log" in harbour.text
    assert "BOOK I. (Folio), CHAPTER I." in split.chapters[4].text
    assert back.text.startswith("End of the Project Gutenberg EBook")
    assert back.text.endswith("Section 1. General Terms of Use.")
    assert split.chapters[-2].text == "They came home in the spring."


def test_traditional_excerpt_without_blank_lines() -> None:
    split = split_chapters(read("zh_rulin_excerpt_trad.txt"))
    assert rows(split) == [
        ("front_matter", "", None, None),
        ("chapter", "第一回 說楔子敷陳大義 借名流隱括全文", 1, None),
        ("chapter", "第二回 王孝廉村學識同科 周蒙師暮年登上第", 2, None),
    ]
    assert split.chapters[1].text.startswith("人生南北多歧路")
    assert "\n第二日，母親同他到間壁秦老家" in split.chapters[1].text  # 第二日 is not a heading


@pytest.mark.parametrize(
    ("line", "title", "number", "kind"),
    [
        ("第一百零一章 归来", "第一百零一章 归来", 101, "chapter"),
        ("第一零零回 完", "第一零零回 完", 100, "chapter"),
        ("第001章 开端", "第001章 开端", 1, "chapter"),
        ("第１２章 全角", "第１２章 全角", 12, "chapter"),
        ("第一百十八回\u3000哭祖庙", "第一百十八回 哭祖庙", 118, "chapter"),
        ("第两千零一章 远", "第两千零一章 远", 2001, "chapter"),
        ("第壹佰零贰章 大写", "第壹佰零贰章 大写", 102, "chapter"),
        ("第 3 话 空格", "第 3 话 空格", 3, "chapter"),
        ("第七节：小节", "第七节：小节", 7, "chapter"),
        ("第二章风起云涌", "第二章风起云涌", 2, "chapter"),
        ("正文 第一章 离家", "第一章 离家", 1, "chapter"),
        ("【第一章】风起", "【第一章】风起", 1, "chapter"),
        ("\u3000\u3000第一章\u3000\u3000风起\t", "第一章 风起", 1, "chapter"),
        ("序章 缘起", "序章 缘起", None, "prologue"),
        ("引子", "引子", None, "prologue"),
        ("前言", "前言", None, "front_matter"),
        ("终章 归途", "终章 归途", None, "epilogue"),
        ("Chapter 7", "Chapter 7", 7, "chapter"),
        ("Chapter One", "Chapter One", 1, "chapter"),
        ("Chapter Twenty-One: Late", "Chapter Twenty-One: Late", 21, "chapter"),
        ("CHAPTER XIV.", "CHAPTER XIV.", 14, "chapter"),
        ("CHAPTER xl", "CHAPTER xl", 40, "chapter"),
        ("Prologue: Before", "Prologue: Before", None, "prologue"),
        ("Epilogue", "Epilogue", None, "epilogue"),
        ("Preface", "Preface", None, "front_matter"),
    ],
)
def test_heading_forms(line: str, title: str, number: int | None, kind: str) -> None:
    split = split_chapters(f"书名\n\n{line}\n\n{BODY}\n")
    assert not split.fallback
    heading = split.chapters[1]
    assert (heading.kind, heading.title, heading.number, heading.text) == (
        kind,
        title,
        number,
        BODY,
    )


@pytest.mark.parametrize(
    "line",
    [
        "第一次见面的时候，他很紧张。",
        "第二回合开始了",
        "第一节课是数学课",
        "第三部分说的是别的事",
        "第一集团军开过来了",
        "第一部手机是诺基亚",
        "第二回来的时候天黑了",
        "他翻到第一章，看到一句话。",
        "第三章的内容我还没看完，他说这本书很好看，我们明天再聊吧。",
        "第一章 " + "这是一句很长很长的话，" * 6 + "终于说完了。",
        "序列号是一二三",
        "前言不搭后语",
        "Part of the crew had gone ashore.",
        "Part two of the plan was simple, he said.",
        "chapter 4 of the log was missing",
        "Chapter and verse.",
        "Book of Maccabees.",
        "BOOKS (subdivisible into CHAPTERS), and these shall",
    ],
)
def test_prose_is_not_a_heading(line: str) -> None:
    text = f"{BODY}\n\n{line}\n{BODY}\n\n{line}\n\n{BODY}"
    split = split_chapters(text)
    assert split.fallback
    assert [c.kind for c in split.chapters] == ["part"]
    assert split.chapters[0].text == text


def test_title_on_the_next_line_is_joined_only_when_it_is_a_title() -> None:
    text = (
        "CHAPTER I.\nDown the Rabbit-Hole\n\nAlice was tired.\n\n"
        "CHAPTER II.\n“Curiouser!” cried Alice.\n\nShe grew.\n\n"
        "CHAPTER III.\nIt was a long tale.\n\nThe end.\n\n"
        "第四章\n风起\n他推开门。\n"
    )
    split = split_chapters(text)
    assert [(c.title, c.text[:10]) for c in split.chapters] == [
        ("CHAPTER I. Down the Rabbit-Hole", "Alice was "),
        ("CHAPTER II.", "“Curiouser"),
        ("CHAPTER III.", "It was a l"),
        ("第四章 风起", "他推开门。"),
    ]


def test_wrapped_english_title_is_joined_but_a_paragraph_is_not() -> None:
    text = (
        "CHAPTER 56. Of the Less Erroneous Pictures of Whales, and the True\n"
        "Pictures of Whaling Scenes.\n\nIn connexion with the monstrous pictures.\n\n"
        "BOOK I. (Folio), CHAPTER I. (Sperm Whale).—This whale, among the English\n"
        "of old vaguely known as the Trumpa whale.\n\nMore about whales.\n"
    )
    split = split_chapters(text)
    assert rows(split) == [
        (
            "chapter",
            "CHAPTER 56. Of the Less Erroneous Pictures of Whales, and the True "
            "Pictures of Whaling Scenes.",
            56,
            None,
        )
    ]
    assert len(split.warnings) == 1 and split.warnings[0].startswith("numbering starts at 56 (")
    assert "BOOK I. (Folio)" in split.chapters[0].text


def test_volumes_without_chapters_are_chapters() -> None:
    split = split_chapters(f"第一卷 山\n\n{BODY}\n\n第二卷 水\n\n{BODY}")
    assert rows(split) == [("chapter", "第一卷 山", 1, None), ("chapter", "第二卷 水", 2, None)]
    assert split.volumes == ()


def test_sections_inside_chapters_stay_in_the_body() -> None:
    text = f"第一章 甲\n\n第一节 子\n\n{BODY}\n\n第二节 丑\n\n{BODY}\n\n第二章 乙\n\n{BODY}"
    split = split_chapters(text)
    assert [c.title for c in split.chapters] == ["第一章 甲", "第二章 乙"]
    first = split.chapters[0].text
    assert first.startswith("第一节 子\n\n") and "第二节 丑" in first


def test_volume_with_its_own_text() -> None:
    split = split_chapters(f"第一卷 山\n\n卷首语。\n\n第一章 甲\n\n{BODY}")
    assert [(c.kind, c.title, c.volume, c.text[:4]) for c in split.chapters] == [
        ("volume", "第一卷 山", "第一卷 山", "卷首语。"),
        ("chapter", "第一章 甲", "第一卷 山", BODY[:4]),
    ]


def paragraphs(n: int) -> str:
    sentence = "他走了很远的路，终于到了山脚下。"
    return "\n\n".join(f"第{i}段。" + sentence * (5 + i % 7) for i in range(n))


def test_long_chapter_is_cut_at_paragraph_ends() -> None:
    body = paragraphs(120)
    split = split_chapters(f"第一章 长\n\n{body}\n\n第二章 短\n\n{BODY}", max_chapter_chars=2000)
    parts = [c for c in split.chapters if c.number == 1]
    assert len(parts) > 1
    assert [c.part for c in parts] == list(range(1, len(parts) + 1))
    assert {c.title for c in parts} == {"第一章 长"}
    assert all(c.chars <= 2000 for c in parts)
    assert "\n\n".join(c.text for c in parts) == body  # cut exactly at paragraph breaks
    assert split.chapters[-1].part is None and split.chapters[-1].text == BODY
    assert [c.index for c in split.chapters] == list(range(len(split.chapters)))


def test_no_headings_falls_back_to_parts() -> None:
    text = paragraphs(200)
    split = split_chapters(text, max_chapter_chars=3000)
    assert split.fallback
    assert split.warnings == ("no chapter headings found: cut into parts of ≤ 3000 chars",)
    n = len(split.chapters)
    assert [(c.kind, c.title, c.number, c.part) for c in split.chapters] == [
        ("part", f"Part {i}", i, None) for i in range(1, n + 1)
    ]
    assert all(c.chars <= 3000 for c in split.chapters)
    assert "\n\n".join(c.text for c in split.chapters) == text


def test_single_huge_line_is_cut_at_sentence_ends() -> None:
    text = "他走了很远的路，终于到了山脚下。山下有一条河！河水清吗？" * 2000
    split = split_chapters(text, max_chapter_chars=5000)
    assert split.fallback and len(split.chapters) >= len(text) // 5000
    assert all(c.chars <= 5000 for c in split.chapters)
    assert all(c.text[-1] in "。！？" for c in split.chapters)
    assert "".join(c.text for c in split.chapters) == text


def test_english_huge_line_is_cut_after_a_sentence_and_its_space() -> None:
    text = "It rained. " * 3000
    split = split_chapters(text.strip(), max_chapter_chars=1000)
    assert all(c.text.startswith("It rained.") and c.text.endswith(".") for c in split.chapters)
    assert " ".join(c.text for c in split.chapters) == text.strip()


def test_text_without_any_break_is_cut_hard() -> None:
    text = "无标点" * 5000
    split = split_chapters(text, max_chapter_chars=4000)
    assert [c.chars for c in split.chapters] == [3750, 3750, 3750, 3750]
    assert "".join(c.text for c in split.chapters) == text


def test_progress_is_reported_sparingly_and_ends_at_one() -> None:
    text = "\n\n".join(f"第{i}章 标题\n\n{BODY}" for i in range(1, 3001))
    seen: list[float] = []
    split = split_chapters(text, on_progress=seen.append, max_chapter_chars=1000)
    assert len(split.chapters) == 3000
    assert seen[-1] == 1.0
    assert 3 <= len(seen) <= 21
    assert seen == sorted(seen)
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(seen[:-1]))
    assert all(0 < f <= 1 for f in seen)


def test_outline_slices_lazily_what_split_materialises() -> None:
    text = read("zh_webnovel.txt")
    outline = outline_chapters(text)
    lazy = outline.chapters(text)
    assert not isinstance(lazy, list | tuple)
    assert tuple(lazy) == split_chapters(text).chapters
    assert all(isinstance(c, Chapter) for c in outline.chapters(text))
    assert [text[s.start : s.end] for s in outline.sections] == [
        c.text for c in split_chapters(text).chapters
    ]


def test_nothing_is_lost_between_sections() -> None:
    text = read("zh_webnovel.txt")
    rebuilt, volume = [], None
    for c in split_chapters(text).chapters:
        if c.volume != volume and c.kind != "volume":
            rebuilt.append(c.volume or "")  # a volume heading with no text of its own
        volume = c.volume
        rebuilt += [c.title, c.text]
    assert squeeze("".join(rebuilt)) == squeeze(text).replace("正文卷", "").replace("正文", "")


def test_tiny_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 100"):
        split_chapters("文本", max_chapter_chars=10)


FUZZ_LINES = [
    *("第一章 开始", "第二章", "第一百零一章 远", "第一卷 山", "楔子", "尾声", "番外", "序"),
    *("正文 第三章 x", "【第四章】", "CHAPTER I.", "Chapter Two", "PART ONE", "Epilogue"),
    *("*** START OF THE PROJECT GUTENBERG EBOOK X ***", "*** END OF THE PROJECT GUTENBERG EBOOK X"),
    *("他走了很远的路。", "It was late.", "", "", "\u3000\u3000段落。", "第一次", "Part of it"),
    *("Down the Hole", "。！？", "x" * 300, "长" * 3000),
]


@pytest.mark.parametrize("seed", range(200))
def test_random_mixtures_keep_the_outline_consistent(seed: int) -> None:
    rng = random.Random(seed)
    text = "\n".join(rng.choice(FUZZ_LINES) for _ in range(rng.randrange(60)))
    limit = rng.choice([100, 700, 20000])
    outline = outline_chapters(text, max_chapter_chars=limit)
    position = 0
    for s in outline.sections:
        assert position <= s.start <= s.end <= len(text)
        assert s.end - s.start <= limit
        assert text[s.start : s.end] == text[s.start : s.end].strip("\n")
        position = s.end
    kinds = {s.kind for s in outline.sections}
    assert outline.fallback or "part" not in kinds  # parts only come from the fallback
    assert not outline.fallback or kinds <= {"part", "front_matter", "back_matter"}
