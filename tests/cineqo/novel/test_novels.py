"""The real novels in tests/data/novels split to exactly their true structure (see its README)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from corpus import novel_bytes

from jobrunner_cineqo._novel.chapters import Chapter, Split, split_chapters
from jobrunner_cineqo._novel.decode import Decoded, decode_novel

Reader = Callable[[str], tuple[Decoded, Split]]


@pytest.fixture(scope="module")
def read() -> Reader:
    """Decode and split a novel once per module."""
    cache: dict[str, tuple[Decoded, Split]] = {}

    def load(name: str) -> tuple[Decoded, Split]:
        if name not in cache:
            decoded = decode_novel(novel_bytes(name))
            cache[name] = (decoded, split_chapters(decoded.text))
        return cache[name]

    return load


def chapters(split: Split) -> list[Chapter]:
    """One entry per chapter: the first part of a chapter that was cut into parts."""
    return [c for c in split.chapters if c.kind == "chapter" and c.part in (None, 1)]


def kinds(split: Split) -> list[str]:
    out: list[str] = []
    for c in split.chapters:
        if c.part in (None, 1) and (not out or out[-1] != c.kind):
            out.append(c.kind)
    return out


def check_common(split: Split, count: int, first: str, last: str) -> None:
    chs = chapters(split)
    assert [c.number for c in chs] == list(range(1, count + 1))
    assert (chs[0].title, chs[-1].title) == (first, last)
    assert not split.fallback
    assert all(c.chars <= 20000 and c.text.strip() for c in split.chapters)
    assert [c.index for c in split.chapters] == list(range(len(split.chapters)))
    for c in split.chapters:
        if c.part is not None and c.part > 1:
            before = split.chapters[c.index - 1]
            assert (before.title, before.number, before.part) == (c.title, c.number, c.part - 1)


def test_xiyouji(read: Reader) -> None:
    decoded, split = read("zh_xiyouji_utf8_crlf.txt")
    assert (decoded.encoding, decoded.method) == ("utf-8", "utf-8")
    assert "\r" not in decoded.text
    check_common(split, 100, "第一回 灵根育孕源流出 心性修持大道生", "第一百回 径回东土 五圣成真")
    assert kinds(split) == ["front_matter", "chapter"]
    assert split.chapters[0].text == "《西游记》吴承恩（明）"
    assert split.warnings == ()
    assert chapters(split)[-1].text.endswith("《西游记》至此终。")


def test_sanguoyanyi(read: Reader) -> None:
    _, split = read("zh_sanguoyanyi_utf8_crlf.txt")
    check_common(
        split,
        120,
        "第一回 宴桃园豪杰三结义 斩黄巾英雄首立功",
        "第一百二十回 荐杜预老将献新谋 降孙皓三分归一统",
    )
    assert chapters(split)[117].title == "第一百十八回 哭祖庙一王死孝 入西川二士争功"
    assert split.warnings == ()


def test_shuihuzhuan_has_a_prologue(read: Reader) -> None:
    _, split = read("zh_shuihuzhuan_utf8_crlf.txt")
    check_common(
        split,
        120,
        "第一回 王教头私走延安府 九纹龙大闹史家村",
        "第一百二十回 宋公明神聚蓼儿 徽宗帝梦游梁山泊",
    )
    assert kinds(split) == ["front_matter", "prologue", "chapter"]
    prologue = split.chapters[1]
    assert (prologue.title, prologue.number) == ("楔子 张天师祈禳瘟疫 洪太尉误走妖魔", None)
    assert prologue.text.startswith("    话说大宋仁宗天子在位，嘉佑三年三月三日五更三点")
    assert prologue.text.endswith("毕竟尤虎山真人说出甚言语来？且听下回分解。")
    assert sum(1 for line in prologue.text.splitlines() if line) == 33
    assert chapters(split)[117].title == "第一百一十八回 卢俊义大战昱岭关 宋公明智取清溪洞"
    assert split.warnings == ()


def test_rulinwaishi_gb18030_with_a_table_of_contents(read: Reader) -> None:
    decoded, split = read("zh_rulinwaishi_gb18030_trad.txt")
    assert (decoded.encoding, decoded.method) == ("gb18030", "gb18030")
    check_common(
        split,
        55,
        "第一回 說楔子敷陳大義 借名流隱括全文",
        "第五十五回 添四客述往思來 彈一曲高山流水",
    )
    assert kinds(split) == ["front_matter", "chapter"]
    assert split.warnings == (
        "skipped a table of contents of 55 entries "
        "(第一回 說楔子敷陳大義 借名流隱括全文 … 第五十五回 添四客述往思來 彈一曲高山流水)",
    )
    front = split.chapters[0].text
    assert front.startswith("儒林外史") and front.count("\n第") == 55  # the TOC is kept there
    assert chapters(split)[0].text.startswith("人生南北多歧路")


def test_pride_and_prejudice(read: Reader) -> None:
    decoded, split = read("en_pride_and_prejudice_pg1342.txt")
    assert (decoded.encoding, decoded.method) == ("utf-8", "bom")
    assert not decoded.text.startswith("\ufeff")
    check_common(split, 61, "Chapter 1", "Chapter 61")
    assert kinds(split) == ["front_matter", "chapter", "back_matter"]
    front, back = split.chapters[0], split.chapters[-1]
    assert front.text.startswith("The Project Gutenberg EBook of Pride and Prejudice")
    assert front.text.endswith("PRIDE AND PREJUDICE\n\nBy Jane Austen")
    assert back.text.startswith("End of the Project Gutenberg EBook of Pride and Prejudice")
    assert chapters(split)[0].text.startswith("It is a truth universally acknowledged")
    assert split.warnings == ()


def test_moby_dick(read: Reader) -> None:
    decoded, split = read("en_moby_dick_pg2701_crlf.txt")
    assert (decoded.encoding, decoded.method) == ("utf-8", "bom")
    check_common(split, 135, "CHAPTER 1. Loomings.", "CHAPTER 135. The Chase.—Third Day.")
    assert kinds(split) == ["front_matter", "chapter", "epilogue", "back_matter"]
    front = [c.title for c in split.chapters if c.kind == "front_matter" and c.part in (None, 1)]
    assert front == ["", "ETYMOLOGY.", "EXTRACTS. (Supplied by a Sub-Sub-Librarian)."]
    epilogues = [c for c in split.chapters if c.kind == "epilogue"]
    assert [(c.title, c.text[:20]) for c in epilogues] == [("Epilogue", "“AND I ONLY AM ESCAP")]
    assert epilogues[0].text.endswith("only found another orphan.")
    titles = {c.title for c in chapters(split)}
    wrapped = "CHAPTER 56. Of the Less Erroneous Pictures of Whales, and the True Pictures of "
    assert wrapped + "Whaling Scenes." in titles
    assert split.warnings == ("skipped a table of contents of 138 entries (ETYMOLOGY. … Epilogue)",)


def test_alice_titles_come_from_the_next_line(read: Reader) -> None:
    decoded, split = read("en_alice_in_wonderland_pg11_noheader.txt")
    assert (decoded.encoding, decoded.method) == ("utf-8", "utf-8")
    check_common(split, 12, "CHAPTER I. Down the Rabbit-Hole", "CHAPTER XII. Alice’s Evidence")
    assert kinds(split) == ["front_matter", "chapter"]
    assert [c.title for c in chapters(split)][3:5] == [
        "CHAPTER IV. The Rabbit Sends in a Little Bill",
        "CHAPTER V. Advice from a Caterpillar",
    ]
    assert chapters(split)[0].text.startswith("Alice was beginning to get very tired")
    assert split.chapters[-1].text.endswith("THE END")
    assert len(split.warnings) == 1 and "table of contents of 12 entries" in split.warnings[0]
