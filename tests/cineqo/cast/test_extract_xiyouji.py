"""character extraction end to end on the real 西游记 (first 10 回), with a scripted model.

The scripted model names the Monkey King differently in each chunk (石猴, 美猴王, 孙悟空, 悟空,
行者), as a real model reading excerpts would; the cast must come out as one character whose
mentions match an independent longest-match count over the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

import openai
import pytest
from corpus import XIYOUJI, novel_bytes
from standins.openai_server import OpenAIStandIn, Reply, answer

from jobrunner_cineqo._cast.chunks import ChapterText, estimate_tokens
from jobrunner_cineqo._cast.llm import CastExtractor
from jobrunner_cineqo._cast.merge import CastOptions

pytestmark = pytest.mark.anyio

HEADING = re.compile(r"^第[一二三四五六七八九十百零〇]+回")
CHAPTER_MARK = re.compile(r"\[Chapter (\d+)\]")
MONKEY = {"石猴", "美猴王", "孙悟空", "悟空", "行者"}


def first_chapters(text: str, count: int) -> list[ChapterText]:
    """A tiny local split on 第…回 lines (the real splitter lives elsewhere)."""
    chapters: list[ChapterText] = []
    title, body = "", []
    for line in text.splitlines():
        if HEADING.match(line.strip()):
            if title:
                chapters.append(
                    ChapterText(index=len(chapters) + 1, title=title, text="\n".join(body))
                )
            title, body = line.strip(), []
        elif title:
            body.append(line)
    chapters.append(ChapterText(index=len(chapters) + 1, title=title, text="\n".join(body)))
    return chapters[:count]


def character(name: str, aliases: list[str], first_chapter: int | None, **more: Any) -> dict:
    fields = ("gender", "age", "appearance", "clothing", "personality", "role", "visual_prompt")
    return {
        "name": name,
        "aliases": aliases,
        "first_chapter": first_chapter,
        **{field: more.get(field) for field in fields},
    }


def monkey_entry(chapter: int) -> dict:
    """Each chunk calls him something else; none of them says chapter 1."""
    if chapter <= 1:
        return character("石猴", ["美猴王"], 3, appearance="石卵化出的石猴")
    if chapter <= 3:
        return character("美猴王", ["孙悟空"], chapter, role="protagonist")
    if chapter <= 6:
        return character(
            "孙悟空", ["悟空", "齐天大圣"], chapter, appearance="毛脸雷公嘴，身穿锁子黄金甲"
        )
    return character("悟空", ["行者"], chapter, gender="男", role="protagonist")


def scripted_model(body: dict[str, Any]) -> Reply:
    user = body["messages"][-1]["content"]
    chapters = sorted({int(n) for n in CHAPTER_MARK.findall(user)})
    first = chapters[0]
    cast = [monkey_entry(first)]
    if first <= 2:
        cast.append(character("须菩提祖师", ["菩提祖师"], 1, role="supporting"))
    if first >= 8:
        cast.append(character("观音菩萨", ["观音"], first, role="supporting"))
    cast.append(character("无名小妖甲", [], first, role="minor"))  # never in the text: noise
    return answer({"characters": cast})


def longest_match_counts(text: str, owners: dict[str, str]) -> dict[str, int]:
    counts = dict.fromkeys(owners.values(), 0)
    longest = max(map(len, owners))
    i = 0
    while i < len(text):
        for size in range(longest, 0, -1):
            owner = owners.get(text[i : i + size])
            if owner:
                counts[owner] += 1
                i += size
                break
        else:
            i += 1
    return counts


async def test_xiyouji_monkey_king_is_one_character(openai_standin: OpenAIStandIn) -> None:
    chapters = first_chapters(novel_bytes(XIYOUJI).decode("utf-8"), 10)
    assert [c.index for c in chapters] == list(range(1, 11))
    assert chapters[0].title.startswith("第一回") and chapters[9].title.startswith("第十回")
    openai_standin.responder = scripted_model

    client = openai.AsyncOpenAI(base_url=openai_standin.base_url, api_key="sk-test", max_retries=0)
    async with client:
        extractor = CastExtractor(client=client, model="test-model", concurrency=2)
        result = await extractor.extract_cast(chapters, CastOptions(chunk_tokens=6000))
    data = json.loads(json.dumps(result.to_json(), ensure_ascii=False))

    requests = openai_standin.completions()
    assert data["usage"]["chunks"] == len(requests) == data["usage"]["llm_calls"]
    assert data["usage"]["prompt_tokens"] > sum(estimate_tokens(c.text) for c in chapters) * 0.9
    for request in requests:
        excerpt = request.user_text.split("\n\n", 1)[-1] if "Known" in request.user_text else None
        assert estimate_tokens(excerpt or request.user_text) <= 6000
    assert any("Known characters: " in r.user_text and "美猴王" in r.user_text for r in requests)

    owners = {name: "monkey" for name in (*MONKEY, "齐天大圣")}
    owners.update({"须菩提祖师": "subhuti", "菩提祖师": "subhuti", "观音菩萨": "guanyin"})
    owners["观音"] = "guanyin"
    expected = {"monkey": 0, "subhuti": 0, "guanyin": 0}
    for chapter in chapters:
        for owner, count in longest_match_counts(chapter.text, owners).items():
            expected[owner] += count

    cast = {c["name"]: c for c in data["characters"]}
    monkey = data["characters"][0]  # by far the most mentioned
    assert {monkey["name"], *monkey["aliases"]} >= MONKEY
    assert sum(bool(MONKEY & {c["name"], *c["aliases"]}) for c in cast.values()) == 1
    assert monkey["mentions"] == expected["monkey"]
    assert monkey["first_chapter"] == 1  # from the text: the model said 2 or later
    assert monkey["appearance"] == "毛脸雷公嘴，身穿锁子黄金甲"  # the richest description
    assert monkey["role"] == "protagonist"
    assert cast["须菩提祖师"]["mentions"] == expected["subhuti"]
    assert cast["观音菩萨"]["mentions"] == expected["guanyin"]
    assert "无名小妖甲" not in cast
    assert data["warnings"] == []
