"""`character.extract` on a real worker, through the real openai client, against the stand-in."""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

import pytest
from standins.openai_server import Reply, answer, refusal, status

from jobrunner_cineqo._cast.chunks import estimate_tokens

pytestmark = pytest.mark.anyio

CHAPTER_MARK = re.compile(r"\[Chapter (\d+)\]")
MONKEY = {"石猴", "美猴王", "孙悟空", "悟空", "齐天大圣"}


def character(name: str, aliases: list[str], first: int | None, **more: Any) -> dict[str, Any]:
    fields = ("gender", "age", "appearance", "clothing", "personality", "role", "visual_prompt")
    return {
        "name": name,
        "aliases": aliases,
        "first_chapter": first,
        **{field: more.get(field) for field in fields},
    }


def excerpt(body: dict[str, Any]) -> str:
    """The chunk's text in a request, without the known-characters line."""
    user = body["messages"][-1]["content"]
    return user.split("\n\n", 1)[1] if user.startswith("Known characters: ") else user


def xiyouji_model(body: dict[str, Any]) -> Reply:
    """Names the Monkey King differently per chunk, as a model reading excerpts would."""
    first = min(int(n) for n in CHAPTER_MARK.findall(excerpt(body)))
    if first <= 1:
        monkey = character("石猴", ["美猴王"], 1, appearance="石卵化出的石猴")
    elif first <= 3:
        monkey = character("美猴王", ["孙悟空"], first, role="protagonist")
    else:
        monkey = character(
            "孙悟空",
            ["悟空", "齐天大圣"],
            first,
            appearance="毛脸雷公嘴",
            visual_prompt="A monkey king in golden armour",
        )
    cast = [monkey, character("无名小妖甲", [], first, role="minor")]  # never in the text
    if first <= 2:
        cast.append(character("须菩提祖师", ["菩提祖师"], first, role="supporting"))
    return answer({"characters": cast})


class ChunkScript:
    """A responder that tells chunks apart by their text, in first-seen order."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def index(self, body: dict[str, Any]) -> int:
        text = excerpt(body)
        with self.lock:
            if text not in self.seen:
                self.seen.append(text)
            return self.seen.index(text)

    def asked(self, requests: list[Any]) -> list[int]:
        """How many requests each chunk got."""
        counts = [0] * len(self.seen)
        for request in requests:
            counts[self.seen.index(excerpt(request.body))] += 1
        return counts


async def test_the_cast_of_xiyouji_from_a_split_job(cineqo: Any) -> None:
    path = cineqo.novel_file("西游记-5.txt", cineqo.xiyouji(5))
    split = await cineqo.run("novel.split", {"source": str(path), "novel_id": "xyj"})
    assert split.status == "completed", split.error
    cineqo.openai.responder = xiyouji_model

    job, *refused = await cineqo.run_many(
        [
            ("character.extract", {"split_job_id": split.id, "novel_id": "xyj"}),
            ("character.extract", {"split_job_id": split.id + 100, "novel_id": "xyj"}),
            ("character.extract", {"split_job_id": split.id + 100}),
            ("character.extract", {"split_manifest": "novels/xyj/manifest.json", "language": "en"}),
        ]
    )

    assert (job.status, job.attempts, job.progress) == ("completed", 1, 1.0), job.error
    result = job.result
    requests = cineqo.openai.completions()
    assert result["model"] == "stand-in-model" and result["chapters"] == 5  # front matter left out
    assert result["usage"]["chunks"] == result["usage"]["llm_calls"] == len(requests) > 5
    assert result["usage"]["resumed_chunks"] == 0
    assert result["warnings"] == []
    for request in requests:
        assert request.body["model"] == "stand-in-model"
        assert request.body["response_format"]["json_schema"]["strict"] is True
        assert estimate_tokens(excerpt(request.body)) <= 6000
    assert any("Known characters: " in r.body["messages"][-1]["content"] for r in requests[1:])

    monkey, *others = result["characters"]
    assert {monkey["name"], *monkey["aliases"]} >= MONKEY
    assert monkey["first_chapter"] == 1
    assert monkey["mentions"] > max(c["mentions"] for c in others)
    assert monkey["visual_prompt"] == "A monkey king in golden armour"
    assert [c["name"] for c in others] == ["须菩提祖师"]  # the noise entry is gone
    assert set(monkey) >= {"gender", "age", "appearance", "clothing", "personality", "role"}

    messages = [r.error for r in refused]
    assert all(r.status == "failed" and r.attempts == 1 for r in refused), messages
    assert f"written by job {split.id}, not by novel.split job {split.id + 100}" in messages[0]
    assert f"no novel.split manifest is stored under 'novels/job-{split.id + 100}/" in messages[1]
    assert "language: not supported yet" in messages[2]
    cineqo.assert_no_secrets()


async def test_a_retry_after_llm_outage_does_not_ask_finished_chunks_again(cineqo: Any) -> None:
    cineqo.env.update(CINEQO_LLM_CONCURRENCY="1", CINEQO_LLM_CHUNK_TOKENS="3000")
    path = cineqo.novel_file("西游记-2.txt", cineqo.xiyouji(2))
    chunks = ChunkScript()
    outage = iter(range(4))  # the client's first try and its three retries

    def model(body: dict[str, Any]) -> Reply:
        if chunks.index(body) == 1 and next(outage, None) is not None:
            return status(500)
        return xiyouji_model(body)

    cineqo.openai.responder = model
    job = await cineqo.run("character.extract", {"source": str(path), "model": "other-model"})

    assert (job.status, job.attempts) == ("completed", 2), job.error
    asked = chunks.asked(cineqo.openai.completions())
    assert asked[0] == 1 and asked[1] == 5 and set(asked[2:]) == {1}
    assert len(asked) == job.result["usage"]["chunks"] > 3
    assert job.result["usage"]["llm_calls"] == len(asked)  # failed calls are not paid for
    assert job.result["usage"]["resumed_chunks"] == 1
    assert {r.body["model"] for r in cineqo.openai.completions()} == {"other-model"}
    assert cineqo.row(job.id)["checkpoint"].keys() == {f"chunk:{i}" for i in range(len(asked))}


async def test_a_killed_worker_resumes_from_the_finished_chunks(cineqo: Any) -> None:
    cineqo.env.update(CINEQO_LLM_CONCURRENCY="1", CINEQO_LLM_CHUNK_TOKENS="3000")
    path = cineqo.novel_file("西游记-2.txt", cineqo.xiyouji(2))
    chunks = ChunkScript()
    crashed = threading.Event()

    def model(body: dict[str, Any]) -> Reply:
        if chunks.index(body) == 1 and not crashed.is_set():
            crashed.wait(30)  # hold the answer until the worker is dead
        return xiyouji_model(body)

    cineqo.openai.responder = model
    async with cineqo.runner(worker=False) as runner:
        job_id = await runner.enqueue("character.extract", {"source": str(path)})

    def first_chunk_saved() -> bool:
        row = cineqo.row(job_id)
        return bool(row["checkpoint"]) and len(cineqo.openai.completions()) >= 2

    _, stderr = cineqo.kill_worker_when(first_chunk_saved)
    crashed.set()
    assert cineqo.row(job_id)["checkpoint"].keys() == {"chunk:0"}

    async with cineqo.runner() as runner:
        await runner.backend.job_rescue_expired()
        job = await runner.wait_for(job_id, timeout=30)

    assert (job.status, job.attempts) == ("completed", 2), job.error
    asked = chunks.asked(cineqo.openai.completions())
    assert asked[0] == 1 and asked[1] == 2 and set(asked[2:]) == {1}
    assert job.result["usage"]["resumed_chunks"] == 1
    assert job.result["characters"][0]["first_chapter"] == 1
    cineqo.assert_no_secrets(stderr)


async def test_a_refused_chunk_is_a_warning_and_a_rejected_request_fails(cineqo: Any) -> None:
    key = cineqo.env["OPENAI_API_KEY"]
    text = "第一回 甲\n" + "孙悟空来了。孙悟空走了。" * 3 + "\n第二回 乙\n" + "唐僧来了。" * 6
    cineqo.env["CINEQO_LLM_CHUNK_TOKENS"] = "64"
    cineqo.openai.script("唐僧来了", refusal("no"))
    cineqo.openai.script("猪八戒", status(401, message=f"Incorrect API key provided: {key}"))
    cineqo.openai.responder = lambda body: answer(
        {"characters": [character("孙悟空", [], 1, role="protagonist")]}
    )

    good, bad = await cineqo.run_many(
        [
            ("character.extract", {"text": text}),
            ("character.extract", {"text": "第一回\n猪八戒来了。猪八戒走了。"}),
        ]
    )

    assert (good.status, good.attempts) == ("completed", 1), good.error
    assert [c["name"] for c in good.result["characters"]] == ["孙悟空"]
    [warning] = good.result["warnings"]
    assert warning["chunk"] == 1 and "model refused: no" in warning["message"]
    assert (bad.status, bad.attempts) == ("failed", 1)
    assert bad.error.startswith("PermanentFailure: LLM service answered HTTP 401")
    cineqo.assert_no_secrets(bad.error)


async def test_without_an_api_key_extract_jobs_wait_and_plugins_says_why(
    cineqo: Any, caplog: pytest.LogCaptureFixture
) -> None:
    del cineqo.env["OPENAI_API_KEY"]
    caplog.set_level(logging.INFO)
    async with cineqo.runner(worker=False) as runner:
        extract = await runner.enqueue("character.extract", {"text": "第一回\n正文"})
        split = await runner.enqueue("novel.split", {"text": "第一回\n正文"})
        await runner.run(burst=True)
        assert runner.not_ready == {"character.extract": "OPENAI_API_KEY is not set"}
        assert (await runner.get_job(split)).status == "completed"
        waiting = await runner.get_job(extract)
    assert (waiting.status, waiting.attempts) == ("pending", 0)
    warnings = [r.getMessage() for r in caplog.records if "not claiming" in r.getMessage()]
    assert warnings == ["not claiming character.extract jobs: OPENAI_API_KEY is not set"]
    assert cineqo.openai.completions() == []

    del cineqo.env["FAL_KEY"]
    shown = cineqo.cli("plugins")
    lines = {line.split()[0]: line for line in shown.splitlines() if line.startswith("  ")}
    assert "not ready: OPENAI_API_KEY is not set" in lines["character.extract"]
    assert "not ready: FAL_KEY is not set" in lines["image.generate"]
    assert lines["novel.split"].split()[-1] == "ready"
    rows = json.loads(cineqo.cli("plugins", "--json"))
    [cineqo_row] = [row for row in rows if row["name"] == "cineqo"]
    extract_row = cineqo_row["job_types"]["character.extract"]
    assert (extract_row["ready"], extract_row["reason"]) == (False, "OPENAI_API_KEY is not set")
    cineqo.assert_no_secrets(caplog.text)


async def test_novel_id_goes_with_every_source(cineqo: Any) -> None:
    """One meaning everywhere: the app's id of the novel, naming its folder, echoed back."""
    cineqo.openai.responder = xiyouji_model
    data = cineqo.xiyouji(2)
    path = cineqo.novel_file("西游记-2.txt", data)
    split = await cineqo.run("novel.split", {"source": str(path), "novel_id": "xyj"})
    anonymous = await cineqo.run("novel.split", {"source": str(path)})
    manifest = "novels/xyj/manifest.json"

    jobs = await cineqo.run_many(
        [
            ("character.extract", {"text": data.decode(), "novel_id": "xyj"}),
            ("character.extract", {"source": str(path), "novel_id": 42}),
            ("character.extract", {"split_manifest": manifest, "novel_id": "xyj"}),
            ("character.extract", {"split_manifest": manifest}),
            ("character.extract", {"split_job_id": split.id, "novel_id": "xyj"}),
            ("character.extract", {"split_job_id": anonymous.id}),
            ("character.extract", {"source": str(path)}),
        ]
    )
    assert all((j.status, j.attempts) == ("completed", 1) for j in jobs), [j.error for j in jobs]
    echoed = [j.result["novel_id"] for j in jobs]
    assert echoed == ["xyj", "42", "xyj", "xyj", "xyj", f"job-{anonymous.id}", None]
    assert len({json.dumps(j.result["characters"]) for j in jobs[:5]}) == 1  # the same novel

    wrong, unsafe = await cineqo.run_many(
        [
            ("character.extract", {"split_manifest": manifest, "novel_id": "sgyy"}),
            ("character.extract", {"source": str(path), "novel_id": ".."}),
        ]
    )
    assert (wrong.status, wrong.attempts) == ("failed", 1)
    assert wrong.error == (
        "PayloadError: the manifest at 'novels/xyj/manifest.json' belongs to novel 'xyj', "
        "not to novel_id 'sgyy'"
    )
    assert (unsafe.status, unsafe.attempts) == ("failed", 1)
    assert "novel_id: cannot name a storage folder" in unsafe.error
