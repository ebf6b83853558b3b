"""Pure logic of character extraction: chunking, merging, mentions, ranking, prompts."""

from __future__ import annotations

import json
import random

import pytest

from jobrunner_cineqo._cast.chunks import ChapterText, chunk_chapters, estimate_tokens
from jobrunner_cineqo._cast.merge import (
    CastOptions,
    CharacterDraft,
    ChunkExtraction,
    MentionStats,
    Usage,
    build_cast,
    count_mentions,
    group_drafts,
    merge_characters,
    merge_group,
    normalise_name,
    rank_characters,
)
from jobrunner_cineqo._cast.prompts import (
    FIELDS,
    KnownCast,
    UnusableAnswer,
    build_messages,
    character_schema,
    format_known,
    parse_answer,
    response_format,
)


def chapter(index: int, text: str, title: str = "") -> ChapterText:
    return ChapterText(index=index, title=title or f"第{index}回", text=text)


# --- token estimate ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("孙悟空", 3),
        ("，。！「」", 5),  # CJK and full-width punctuation
        ("hello world", 3),  # 11 chars / 4, rounded up
        ("孙悟空 says hi!", 6),  # 3 CJK + ceil(9 / 4)
        ("abcd", 1),
    ],
)
def test_estimate_tokens(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


# --- chunking ----------------------------------------------------------------------------


def test_small_chapters_share_chunks_and_stay_whole() -> None:
    chapters = [chapter(i, "    天地初开。\r\n\r\n" * 20) for i in range(1, 11)]  # ~110 tokens each
    chunks = chunk_chapters(chapters, budget=400)
    assert 1 < len(chunks) < 10
    assert [c.index for c in chunks] == list(range(len(chunks)))
    seen = [n for c in chunks for n in c.chapters]
    assert seen == list(range(1, 11))  # every chapter once, in order, never cut
    for c in chunks:
        assert c.tokens <= 400
        assert "(cont.)" not in c.text
    # Blank lines and indentation are dropped, the words are kept.
    assert chunks[0].parts[0].body == "\n".join(["天地初开。"] * 20)


def test_large_chapter_is_cut_at_paragraph_boundaries() -> None:
    paragraphs = [f"第{i}段" + "话" * (30 + i % 7) + "。" for i in range(60)]
    chapters = [chapter(1, "短章。"), chapter(2, "\n".join(paragraphs)), chapter(3, "尾声。")]
    chunks = chunk_chapters(chapters, budget=300)
    pieces = [p for c in chunks for p in c.parts if p.chapter == 2]
    assert len(pieces) > 3
    assert pieces[0].heading == "[Chapter 2] 第2回"
    assert all(p.heading == "[Chapter 2] 第2回 (cont.)" for p in pieces[1:])
    # Every piece is whole paragraphs, and together they are the chapter.
    assert [line for p in pieces for line in p.body.split("\n")] == paragraphs
    assert all(c.tokens <= 300 for c in chunks)
    assert chunks[0].chapters[0] == 1


def test_a_cut_chapter_fills_the_room_left_before_it() -> None:
    paragraphs = ["长" * 49 + "。" for _ in range(12)]  # 50 tokens each
    chunks = chunk_chapters([chapter(1, "序。" * 40), chapter(2, "\n".join(paragraphs))], 300)
    assert chunks[0].chapters == (1, 2)
    assert [p.heading for p in chunks[1].parts] == ["[Chapter 2] 第2回 (cont.)"]
    for c in chunks[:-1]:
        assert 300 - 51 < c.tokens <= 300  # no further paragraph would have fitted
    assert [line for c in chunks for p in c.parts[-1:] for line in p.body.split("\n")] == paragraphs


def test_a_sliver_of_room_is_not_used_for_a_cut_chapter() -> None:
    paragraphs = ["长" * 49 + "。" for _ in range(12)]
    chunks = chunk_chapters([chapter(1, "序。" * 115), chapter(2, "\n".join(paragraphs))], 300)
    assert chunks[0].chapters == (1,)
    assert chunks[1].parts[0].heading == "[Chapter 2] 第2回"


def test_oversized_paragraph_is_cut_at_sentences_then_anywhere() -> None:
    sentences = ["他" * 50 + "。" for _ in range(10)] + ["长" * 700]
    text = "".join(sentences)
    chunks = chunk_chapters([chapter(1, text)], budget=200)
    assert all(c.tokens <= 200 for c in chunks)
    assert "".join("".join(p.body.split("\n")) for c in chunks for p in c.parts) == text
    first_body = chunks[0].parts[0].body
    assert first_body.split("\n")[0] == "他" * 50 + "。"  # cut after a sentence end


def test_chunk_budget_must_be_sensible() -> None:
    with pytest.raises(ValueError, match="at least 64"):
        chunk_chapters([chapter(1, "x")], budget=10)


def test_chunk_digest_follows_text() -> None:
    a = chunk_chapters([chapter(1, "甲乙丙")])[0]
    b = chunk_chapters([chapter(1, "甲乙丁")])[0]
    assert a.digest == chunk_chapters([chapter(1, "甲乙丙")])[0].digest
    assert a.digest != b.digest


# --- merging -----------------------------------------------------------------------------


def test_normalise_name() -> None:
    assert normalise_name("Elizabeth  Bennet") == normalise_name("elizabeth bennet")
    assert normalise_name("哈利·波特") == normalise_name("哈利波特")
    assert normalise_name("ＡＢＣ") == "abc"  # full-width letters


def test_merge_joins_entries_sharing_any_name_transitively() -> None:
    drafts = [
        CharacterDraft(name="美猴王", aliases=("石猴",), first_chapter=1, appearance="猴"),
        CharacterDraft(name="唐僧", aliases=("玄奘",), first_chapter=12),
        CharacterDraft(name="孙悟空", aliases=("美猴王",), first_chapter=2, role="protagonist"),
        CharacterDraft(name="行者", aliases=("孙悟空", "悟空"), appearance="毛脸雷公嘴的猴子"),
        CharacterDraft(name="孙悟空", aliases=("齐天大圣",), gender="男", role="protagonist"),
        CharacterDraft(name="陈玄奘", aliases=("玄奘", "唐三藏"), role="protagonist"),
    ]
    merged = merge_characters(drafts)
    assert [m.name for m in merged] == ["孙悟空", "唐僧"]
    wukong, tang = merged
    assert wukong.aliases == ("美猴王", "石猴", "行者", "悟空", "齐天大圣")
    assert wukong.first_chapter == 1
    assert wukong.appearance == "毛脸雷公嘴的猴子"  # the longest description
    assert wukong.gender == "男"
    assert wukong.role == "protagonist"
    assert tang.aliases == ("玄奘", "陈玄奘", "唐三藏")
    assert tang.first_chapter == 12


def test_merge_ignores_one_character_aliases_and_case() -> None:
    drafts = [
        CharacterDraft(name="孙悟空", aliases=("猴",)),
        CharacterDraft(name="猪八戒", aliases=("猴", "Zhu Bajie")),
        CharacterDraft(name="zhu  bajie", aliases=("八戒",)),
    ]
    merged = merge_characters(drafts)
    assert [m.name for m in merged] == ["孙悟空", "猪八戒"]
    assert merged[1].aliases == ("猴", "Zhu Bajie", "八戒")  # "zhu  bajie" is the same name


def test_merge_votes_on_role_and_keeps_first_name_on_ties() -> None:
    drafts = [
        CharacterDraft(name="牛魔王", role="supporting"),
        CharacterDraft(name="大力王", aliases=("牛魔王",), role="antagonist"),
        CharacterDraft(name="牛魔王", role="minor", age="中年"),
    ]
    [bull] = merge_characters(drafts)
    assert bull.name == "牛魔王"
    # One vote each: the more important role wins.
    assert bull.role == "antagonist"
    assert bull.age == "中年"


def test_known_cast_ranks_by_how_often_seen_and_caps() -> None:
    known = KnownCast()
    known.add(
        [CharacterDraft(name="甲"), CharacterDraft(name="乙", aliases=("乙哥", "老乙", "小乙"))]
    )
    known.add([CharacterDraft(name="乙"), CharacterDraft(name="丙")])
    assert known.roster(limit=2, alias_limit=2) == [("乙", ("乙哥", "老乙")), ("甲", ())]
    assert format_known(known.roster(limit=2, alias_limit=2)) == "乙(乙哥/老乙); 甲"


def test_known_cast_merges_like_merge_characters() -> None:
    rng = random.Random(3)
    families = [
        ["孙悟空", "悟空", "行者", "美猴王"],
        ["唐僧", "玄奘", "三藏"],
        ["猪八戒", "八戒", "猪悟能"],
        ["沙僧", "悟净", "沙和尚"],
        ["观音", "观音菩萨"],
        ["如来", "佛祖"],
    ]
    drafts = []
    for _ in range(40):
        family = rng.choice(families[:-1]) if len(drafts) < 30 else families[-1]
        names = rng.sample(family, rng.randint(1, len(family)))
        if rng.random() < 0.1:  # now and then a model mixes two characters up
            names.append(rng.choice(rng.choice(families)))
        drafts.append(CharacterDraft(name=names[0], aliases=tuple(names[1:])))
    known = KnownCast()
    for start in range(0, 40, 7):  # in several batches, as chunk answers arrive
        known.add(drafts[start : start + 7])
    groups = group_drafts(drafts)
    assert 2 < len(groups) < len(families)
    by_size = sorted(groups, key=len, reverse=True)  # stable: first seen first among equals
    expected = [(merged.name, merged.aliases) for merged in map(merge_group, by_size)]
    assert known.roster(limit=99, alias_limit=99) == expected


# --- mentions ----------------------------------------------------------------------------


def test_overlapping_aliases_count_once_longest_first() -> None:
    wukong = CharacterDraft(name="孙悟空", aliases=("悟空", "行者"))
    daoist = CharacterDraft(name="悟空道人")
    chapters = [
        chapter(1, "石猴出世。"),
        chapter(2, "孙悟空道：悟空来也。行者笑。"),
        chapter(3, "悟空道人至。"),
    ]
    (
        wukong_stats,
        daoist_stats,
    ) = count_mentions([wukong, daoist], chapters)
    assert wukong_stats == MentionStats(mentions=3, first_chapter=2)
    assert daoist_stats == MentionStats(mentions=1, first_chapter=3)


def test_latin_names_match_whole_words_only() -> None:
    jane = CharacterDraft(name="Jane", aliases=("Miss Bennet",))
    text = "Jane smiled. Janet did not. Miss Bennet left; Jane's book."
    [stats] = count_mentions([jane], [chapter(1, text)])
    assert stats.mentions == 3


def test_no_characters_or_no_names() -> None:
    assert count_mentions([], [chapter(1, "text")]) == []


def _naive_counts(names: dict[str, int], text: str, n: int) -> list[int]:
    counts = [0] * n
    i = 0
    longest = max(map(len, names))
    while i < len(text):
        for size in range(longest, 0, -1):
            owner = names.get(text[i : i + size])
            if owner is not None:
                counts[owner] += 1
                i += size
                break
        else:
            i += 1
    return counts


def test_mention_counts_match_a_naive_longest_match_scan() -> None:
    rng = random.Random(7)
    alphabet = "孙悟空行者八戒沙僧唐三藏大圣老"
    text = "".join(rng.choice(alphabet) for _ in range(5000))
    characters = [
        CharacterDraft(name="孙悟空", aliases=("悟空", "行者", "大圣")),
        CharacterDraft(name="八戒", aliases=("老八",)),
        CharacterDraft(name="唐三藏", aliases=("三藏", "唐僧")),
        CharacterDraft(name="沙僧", aliases=("老沙",)),
    ]
    names = {n: i for i, c in enumerate(characters) for n in c.names}
    stats = count_mentions(characters, [chapter(1, text)])
    assert [s.mentions for s in stats] == _naive_counts(names, text, len(characters))
    assert sum(s.mentions for s in stats) > 100


# --- ranking and the result --------------------------------------------------------------


def test_rank_orders_drops_noise_caps_and_fixes_first_chapter() -> None:
    drafts = [
        CharacterDraft(name="甲", first_chapter=5),  # the text has it in 2: too late
        CharacterDraft(name="乙"),  # no chapter from the model
        CharacterDraft(name="丙", first_chapter=1),  # earlier than the text: kept
        CharacterDraft(name="丁", first_chapter=1),  # noise
        CharacterDraft(name="戊"),
    ]
    stats = [
        MentionStats(mentions=10, first_chapter=2),
        MentionStats(mentions=30, first_chapter=3),
        MentionStats(mentions=10, first_chapter=4),
        MentionStats(mentions=1, first_chapter=1),
        MentionStats(mentions=2, first_chapter=9),
    ]
    cast = rank_characters(drafts, stats, min_mentions=2, max_characters=3)
    assert [(c.name, c.mentions, c.first_chapter) for c in cast] == [
        ("乙", 30, 3),
        ("丙", 10, 1),
        ("甲", 10, 2),
    ]


def test_build_cast_merges_counts_and_adds_up_usage() -> None:
    chapters = [chapter(1, "美猴王出世。美猴王称王。"), chapter(2, "孙悟空学艺。路人甲。")]
    extractions = [
        ChunkExtraction(
            chunk=0,
            digest="a",
            chapters=(1,),
            characters=(CharacterDraft(name="美猴王", role="protagonist"),),
            usage=Usage(llm_calls=1, prompt_tokens=100, completion_tokens=20),
        ),
        ChunkExtraction(
            chunk=1,
            digest="b",
            chapters=(2,),
            characters=(
                CharacterDraft(name="孙悟空", aliases=("美猴王",), first_chapter=2),
                CharacterDraft(name="路人甲"),
            ),
            warnings=("dropped 1 entries without a name",),
            usage=Usage(llm_calls=2, prompt_tokens=150, completion_tokens=30),
        ),
    ]
    result = build_cast(chapters, extractions, CastOptions(min_mentions=2))
    data = result.to_json()
    assert [c["name"] for c in data["characters"]] == ["美猴王"]
    [monkey] = data["characters"]
    assert list(monkey) == [
        "name",
        "aliases",
        "gender",
        "age",
        "appearance",
        "clothing",
        "personality",
        "role",
        "first_chapter",
        "mentions",
        "visual_prompt",
    ]
    assert monkey["aliases"] == ["孙悟空"]
    assert (monkey["mentions"], monkey["first_chapter"]) == (3, 1)
    assert data["usage"] == {
        "llm_calls": 3,
        "prompt_tokens": 250,
        "completion_tokens": 50,
        "chunks": 2,
    }
    assert data["warnings"] == [{"chunk": 1, "message": "dropped 1 entries without a name"}]
    json.dumps(data)


def test_chunk_extraction_round_trips_through_json() -> None:
    extraction = ChunkExtraction(
        chunk=3,
        digest="abc",
        chapters=(4, 5),
        characters=(CharacterDraft(name="唐僧", aliases=("玄奘",), first_chapter=4),),
        warnings=("w",),
        usage=Usage(llm_calls=1, prompt_tokens=9, completion_tokens=2),
    )
    assert ChunkExtraction.from_json(json.loads(json.dumps(extraction.to_json()))) == extraction


# --- prompts and answers -----------------------------------------------------------------


def _objects(schema: object) -> list[dict]:
    if isinstance(schema, dict):
        found = [schema] if schema.get("type") == "object" else []
        return found + [o for value in schema.values() for o in _objects(value)]
    if isinstance(schema, list):
        return [o for value in schema for o in _objects(value)]
    return []


def test_schema_is_strict() -> None:
    schema = character_schema()
    objects = _objects(schema)
    assert len(objects) == 2
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    character = schema["properties"]["characters"]["items"]["properties"]
    assert tuple(character) == FIELDS
    assert character["name"] == {"type": "string"}
    assert character["first_chapter"] == {"type": ["integer", "null"]}
    assert character["role"]["enum"] == ["protagonist", "antagonist", "supporting", "minor", None]
    assert response_format("json_schema")["json_schema"]["strict"] is True
    assert response_format("json_object") == {"type": "json_object"}
    with pytest.raises(ValueError, match="unknown response mode"):
        response_format("xml")  # type: ignore[arg-type]


def test_messages_carry_known_characters_and_the_chunk() -> None:
    [chunk] = chunk_chapters([chapter(1, "花果山。")])
    system, user = build_messages(chunk, [("孙悟空", ("美猴王",))], "json_schema")
    assert system["role"] == "system"
    assert user["content"] == "Known characters: 孙悟空(美猴王)\n\n[Chapter 1] 第1回\n花果山。"
    _, bare = build_messages(chunk, [], "json_object")
    assert "Known characters" not in bare["content"]
    json_object_system = build_messages(chunk, [], "json_object")[0]["content"]
    assert "visual_prompt" in json_object_system
    assert "JSON" in json_object_system  # OpenAI's json_object mode requires the word


def test_parse_answer_is_lenient_about_detail() -> None:
    content = json.dumps(
        [
            {"name": " 孙悟空 ", "aliases": ["悟空", "孙悟空", "", "悟空"], "role": "Protagonist"},
            {"name": "唐僧", "aliases": "玄奘", "age": 30, "first_chapter": "12", "role": "hero"},
            {"aliases": ["nobody"]},
            "not an object",
        ],
        ensure_ascii=False,
    )
    drafts, notes = parse_answer(content)
    assert drafts == [
        CharacterDraft(name="孙悟空", aliases=("悟空",), role="protagonist"),
        CharacterDraft(name="唐僧", aliases=("玄奘",), age="30", first_chapter=12),
    ]
    assert notes == ["dropped 2 entries without a name"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "empty"),
        ("  ", "empty"),
        ('{"characters": [', "not JSON"),
        ('{"people": []}', 'no "characters" list'),
        ('"just text"', 'no "characters" list'),
    ],
)
def test_parse_answer_rejects_unusable_answers(content: str | None, message: str) -> None:
    with pytest.raises(UnusableAnswer, match=message):
        parse_answer(content)
