"""CastExtractor through the real openai.AsyncOpenAI against the local stand-in server."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from standins.openai_server import (
    OpenAIStandIn,
    Reply,
    answer,
    content_filter,
    raw,
    refusal,
    status,
)

from jobrunner_cineqo._cast.chunks import Chunk, ChunkPart, estimate_tokens
from jobrunner_cineqo._cast.llm import (
    CastExtractor,
    LLMNotConfigured,
    LLMRateLimited,
    LLMRequestRejected,
    LLMUnavailable,
    client_from_env,
    response_mode_from_env,
)
from jobrunner_cineqo._cast.merge import CharacterDraft, Usage
from jobrunner_cineqo._cast.prompts import character_schema

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


KEY = "sk-test-4f1c9a7e-do-not-leak"
WUKONG = {
    "name": "孙悟空",
    "aliases": ["美猴王"],
    "gender": "男",
    "age": None,
    "appearance": "毛脸雷公嘴",
    "clothing": "虎皮裙",
    "personality": "机敏",
    "role": "protagonist",
    "first_chapter": 1,
    "visual_prompt": "A monkey king in a tiger-skin kilt",
}
BAJIE = {**WUKONG, "name": "猪八戒", "aliases": ["八戒"], "first_chapter": 2}


def chunks(n: int) -> list[Chunk]:
    return [
        Chunk(
            index=i,
            parts=(
                ChunkPart(chapter=i + 1, heading=f"[Chapter {i + 1}] 第{i + 1}回", body="话说。"),
            ),
        )
        for i in range(n)
    ]


def marker(chunk_index: int) -> str:
    return f"[Chapter {chunk_index + 1}]"


def asked(server: OpenAIStandIn) -> list[int]:
    """Which chunks the server was asked about, in order."""
    found = []
    for request in server.completions():
        found += [i for i in range(100) if marker(i) in request.user_text]
    return found


@contextlib.asynccontextmanager
async def extractor(
    server: OpenAIStandIn, *, max_retries: int = 2, **kwargs: Any
) -> AsyncIterator[CastExtractor]:
    # Closed in the test's own event loop, not later by the garbage collector.
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=max_retries)
    async with client:
        yield CastExtractor(client=client, model="test-model", **kwargs)


async def test_success_and_the_wire_format(openai_standin: OpenAIStandIn) -> None:
    content = json.dumps({"characters": [WUKONG]}, ensure_ascii=False)
    openai_standin.script(marker(0), raw(content))
    [chunk] = chunks(1)
    async with extractor(openai_standin) as ex:
        [result] = await ex.extract_chunks([chunk])

    assert result.characters == (CharacterDraft.from_json(WUKONG),)
    assert (result.chunk, result.chapters, result.digest) == (0, (1,), chunk.digest)
    assert result.warnings == ()
    assert result.usage.llm_calls == 1
    assert result.usage.prompt_tokens > estimate_tokens(chunk.text)
    assert result.usage.completion_tokens == estimate_tokens(content)

    [request] = openai_standin.completions()
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "test-model"
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "cast_extraction", "schema": character_schema(), "strict": True},
    }
    system, user = request.body["messages"]
    assert system["role"] == "system"
    assert user == {"role": "user", "content": chunk.text}
    assert "temperature" not in request.body


async def test_a_temperature_is_sent_only_when_given(openai_standin: OpenAIStandIn) -> None:
    openai_standin.script(marker(0), answer({"characters": [WUKONG]}))
    async with extractor(openai_standin, temperature=0.2) as ex:
        await ex.extract_chunks(chunks(1))
    [request] = openai_standin.completions()
    assert request.body["temperature"] == 0.2


async def test_known_characters_reach_later_prompts(openai_standin: OpenAIStandIn) -> None:
    openai_standin.script(marker(0), answer({"characters": [WUKONG]}))
    openai_standin.script(marker(1), answer({"characters": [BAJIE]}))
    async with extractor(openai_standin, concurrency=1) as ex:
        await ex.extract_chunks(chunks(3))

    first, second, third = (r.user_text for r in openai_standin.completions())
    assert "Known characters" not in first
    assert second.startswith("Known characters: 孙悟空(美猴王)\n\n[Chapter 2]")
    assert third.startswith("Known characters: 孙悟空(美猴王); 猪八戒(八戒)\n\n[Chapter 3]")


async def test_a_rate_limit_is_not_retried_in_place(openai_standin: OpenAIStandIn) -> None:
    # The whole cluster should stop asking (the handler pauses the type), not this worker ask
    # again: a 429 comes back at once, with the server's wait.
    openai_standin.script(marker(0), status(429, retry_after_ms=2500), answer({"characters": []}))
    async with extractor(openai_standin, max_retries=2) as ex:
        with pytest.raises(LLMRateLimited, match="HTTP 429") as caught:
            await ex.extract_chunks(chunks(1))
    assert caught.value.retry_after == 2.5
    assert len(openai_standin.completions()) == 1


async def test_an_exhausted_quota_is_not_a_rate_limit(openai_standin: OpenAIStandIn) -> None:
    quota = Reply(
        status=429,
        headers={"retry-after-ms": "1"},
        error_body={"error": {"message": "quota", "type": "x", "code": "insufficient_quota"}},
    )
    openai_standin.script(marker(0), quota)
    async with extractor(openai_standin, max_retries=2) as ex:
        with pytest.raises(LLMUnavailable, match="HTTP 429: .*quota is used up") as caught:
            await ex.extract_chunks(chunks(1))
    assert not isinstance(caught.value, LLMRateLimited)
    assert len(openai_standin.completions()) == 1


async def test_server_errors_are_retried_then_succeed(openai_standin: OpenAIStandIn) -> None:
    openai_standin.script(marker(0), status(503), status(500), answer({"characters": [WUKONG]}))
    async with extractor(openai_standin, max_retries=2) as ex:
        [result] = await ex.extract_chunks(chunks(1))
    assert [c.name for c in result.characters] == ["孙悟空"]
    assert result.usage.llm_calls == 1  # the failed calls were answered with no usage
    assert len(openai_standin.completions()) == 3


async def test_server_errors_exhaust_retries(openai_standin: OpenAIStandIn) -> None:
    openai_standin.script(marker(0), status(500))
    async with extractor(openai_standin, max_retries=2) as ex:
        with pytest.raises(LLMUnavailable, match="HTTP 500") as caught:
            await ex.extract_chunks(chunks(1))
    assert len(openai_standin.completions()) == 3
    assert "after 2 retries" in str(caught.value)
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)


async def test_rejected_request_is_permanent_and_never_shows_the_key(
    openai_standin: OpenAIStandIn,
) -> None:
    openai_standin.script(marker(0), status(401, message=f"Incorrect API key provided: {KEY}."))
    async with extractor(openai_standin, max_retries=2) as ex:
        with pytest.raises(LLMRequestRejected, match="HTTP 401") as caught:
            await ex.extract_chunks(chunks(1))
    assert len(openai_standin.completions()) == 1  # 401 is not retried
    assert "<redacted>" in str(caught.value)
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)
    assert KEY not in repr(ex)


async def test_a_server_without_json_schema_gets_a_hint(openai_standin: OpenAIStandIn) -> None:
    openai_standin.script(marker(0), status(400, message="response_format json_schema unsupported"))
    async with extractor(openai_standin) as ex:
        with pytest.raises(LLMRequestRejected, match="CINEQO_LLM_RESPONSE_FORMAT=json_object"):
            await ex.extract_chunks(chunks(1))
    assert len(openai_standin.completions()) == 1


def test_extractor_settings_are_checked() -> None:
    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key=KEY)
    with pytest.raises(ValueError, match="concurrency"):
        CastExtractor(client=client, concurrency=0)
    with pytest.raises(ValueError, match="attempts_per_chunk"):
        CastExtractor(client=client, attempts_per_chunk=0)


async def test_a_bad_answer_is_asked_again(openai_standin: OpenAIStandIn) -> None:
    openai_standin.script(
        marker(0), raw('{"characters": [{"name": "孙'), answer({"characters": [WUKONG]})
    )
    async with extractor(openai_standin) as ex:
        [result] = await ex.extract_chunks(chunks(1))
    assert [c.name for c in result.characters] == ["孙悟空"]
    assert result.warnings == ()
    assert result.usage.llm_calls == 2  # both answers were paid for


@pytest.mark.parametrize(
    ("bad", "warning"),
    [
        (raw("{oops"), "answer is not JSON"),
        (refusal("I won't."), "model refused: I won't."),
        (content_filter(), "content filter"),
        (raw('{"characters": [', finish_reason="length"), "cut off at the token limit"),
        (raw('{"persons": []}'), 'no "characters" list'),
    ],
)
async def test_unusable_answers_become_a_warning_on_their_chunk(
    openai_standin: OpenAIStandIn, bad: Any, warning: str
) -> None:
    openai_standin.script(marker(0), bad)
    openai_standin.script(marker(1), answer({"characters": [WUKONG]}))
    async with extractor(openai_standin, attempts_per_chunk=2) as ex:
        first, second = await ex.extract_chunks(chunks(2))

    assert first.characters == ()
    [message] = first.warnings
    assert message.startswith("no usable answer after 2 attempts: attempt 1: ")
    assert message.count(warning) == 2
    assert first.usage.llm_calls == 2
    assert [c.name for c in second.characters] == ["孙悟空"]
    assert asked(openai_standin).count(0) == 2


async def test_resume_skips_finished_chunks(openai_standin: OpenAIStandIn) -> None:
    openai_standin.script(marker(0), answer({"characters": [WUKONG]}))
    openai_standin.script(marker(1), answer({"characters": [BAJIE]}))
    openai_standin.script(marker(2), status(503))
    saved: dict[int, dict[str, Any]] = {}

    async def on_chunk_done(index: int, extraction: dict[str, Any]) -> None:
        saved[index] = extraction

    async with extractor(openai_standin, max_retries=0, concurrency=1) as ex:
        with pytest.raises(LLMUnavailable):
            await ex.extract_chunks(chunks(4), on_chunk_done=on_chunk_done)
    assert sorted(saved) == [0, 1]
    assert asked(openai_standin) == [0, 1, 2]

    # The job stores the checkpoints as JSON (int keys become strings) and is retried.
    stored = json.loads(json.dumps(saved))
    openai_standin.requests.clear()
    openai_standin.script(marker(2), answer({"characters": []}))
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    async with extractor(openai_standin, concurrency=1) as ex:
        results = await ex.extract_chunks(
            chunks(4), done=stored, on_chunk_done=on_chunk_done, on_progress=on_progress
        )
    assert asked(openai_standin) == [2, 3]  # never paid twice for chunks 0 and 1
    assert [r.chunk for r in results] == [0, 1, 2, 3]
    assert [c.name for c in results[1].characters] == ["猪八戒"]
    assert progress == [(2, 4), (3, 4), (4, 4)]
    # The resumed characters were known to the chunks asked now.
    assert "孙悟空(美猴王); 猪八戒(八戒)" in openai_standin.completions()[0].user_text


async def test_stale_or_unreadable_checkpoints_are_redone(openai_standin: OpenAIStandIn) -> None:
    old = chunks(2)
    stale = {
        "chunk": 0,
        "digest": "not-this-text",
        "chapters": [1],
        "characters": [WUKONG],
        "warnings": [],
        "usage": {"llm_calls": 1, "prompt_tokens": 1, "completion_tokens": 1},
    }
    async with extractor(openai_standin) as ex:
        await ex.extract_chunks(old, done={0: stale, "1": {"chunk": "x"}})
    assert sorted(asked(openai_standin)) == [0, 1]


async def test_concurrency_is_limited_and_progress_reported(
    openai_standin: OpenAIStandIn,
) -> None:
    # Every request waits for a second one to arrive: proof that two run at once.
    pair = threading.Barrier(2, timeout=10)

    def in_pairs(body: dict[str, Any]) -> Reply:
        pair.wait()
        return answer({"characters": []})

    openai_standin.responder = in_pairs
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    async with extractor(openai_standin, concurrency=2) as ex:
        results = await ex.extract_chunks(chunks(6), on_progress=on_progress)
    assert [r.chunk for r in results] == list(range(6))
    assert openai_standin.max_in_flight == 2
    assert progress == [(i, 6) for i in range(7)]


async def test_json_object_mode(openai_standin: OpenAIStandIn) -> None:
    openai_standin.script(
        marker(0), answer({"characters": [{"name": "唐僧", "aliases": ["玄奘"]}]})
    )
    async with extractor(openai_standin, response_mode="json_object") as ex:
        [result] = await ex.extract_chunks(chunks(1))
    assert result.characters == (CharacterDraft(name="唐僧", aliases=("玄奘",)),)
    [request] = openai_standin.completions()
    assert request.body["response_format"] == {"type": "json_object"}
    assert "first_chapter" in request.body["messages"][0]["content"]


async def test_client_from_env(openai_standin: OpenAIStandIn) -> None:
    with pytest.raises(LLMNotConfigured, match="OPENAI_API_KEY") as caught:
        client_from_env({"OPENAI_API_KEY": "  ", "CINEQO_LLM_MODEL": "m"})
    assert "CINEQO_LLM_MODEL" not in str(caught.value)

    client, model = client_from_env({"OPENAI_API_KEY": KEY})
    async with client:
        assert model == "gpt-4o-mini"
        assert str(client.base_url).startswith("https://api.openai.com/v1")

    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": openai_standin.base_url}
    client, model = client_from_env({**env, "CINEQO_LLM_MODEL": "qwen2.5:7b"})
    async with client:
        ex = CastExtractor(client=client, model=model)
        assert KEY not in repr(ex)
        await ex.extract_chunks(chunks(1))
    [request] = openai_standin.completions()
    assert request.body["model"] == "qwen2.5:7b"
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_response_mode_from_env() -> None:
    assert response_mode_from_env({}) == "json_schema"
    assert response_mode_from_env({"CINEQO_LLM_RESPONSE_FORMAT": "json_object"}) == "json_object"
    with pytest.raises(LLMNotConfigured, match="CINEQO_LLM_RESPONSE_FORMAT"):
        response_mode_from_env({"CINEQO_LLM_RESPONSE_FORMAT": "yaml"})


def test_usage_adds_up() -> None:
    total = Usage(llm_calls=1, prompt_tokens=2, completion_tokens=3) + Usage(llm_calls=1)
    assert total == Usage(llm_calls=2, prompt_tokens=2, completion_tokens=3)
