"""`novel.process` end to end: a real novel in; chapters, cast and portraits out, as child jobs
of one parent, on a real worker with the OpenAI, fal and S3 stand-ins."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from standins.fal_server import PNG_BYTES, Reply
from standins.openai_server import answer

from jobrunner_cineqo._pipeline.handler import main_characters

pytestmark = pytest.mark.anyio

CHAPTER_MARK = re.compile(r"\[Chapter (\d+)\]")
PROMPTS = {
    "孙悟空": "A stone monkey in golden armour with a staff",
    "须菩提祖师": "An old Taoist master in grey robes",
    "玉皇大帝": None,  # no visual prompt: skipped
}


def entry(name: str, aliases: list[str], first: int) -> dict[str, Any]:
    fields = ("gender", "age", "appearance", "clothing", "personality", "role")
    return {
        "name": name,
        "aliases": aliases,
        "first_chapter": first,
        "visual_prompt": PROMPTS.get(name),
        **dict.fromkeys(fields),
    }


def model(body: dict[str, Any]) -> Any:
    user = body["messages"][-1]["content"]
    first = min(int(n) for n in CHAPTER_MARK.findall(user))
    cast = [entry("孙悟空", ["美猴王", "悟空", "石猴"], first)]
    if first <= 2:
        cast.append(entry("须菩提祖师", ["祖师"], 2))
    if first >= 3:
        cast.append(entry("玉皇大帝", ["玉帝"], 3))
    return answer({"characters": cast})


async def test_a_novel_becomes_chapters_a_cast_and_portraits(
    cineqo: Any, r2_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    s3 = cineqo.use_r2(r2_env)
    caplog.set_level(logging.INFO)
    cineqo.openai.responder = model
    path = cineqo.novel_file("西游记.txt", cineqo.xiyouji(5))

    async with cineqo.runner(concurrency=6) as runner:
        parent_id = await runner.enqueue(
            "novel.process",
            {"source": str(path), "novel_id": "xyj", "portraits": 3, "image_size": "square_hd"},
            user_id="reader-1",
        )
        parent = await runner.wait_for(parent_id, timeout=60)
        children = await runner.list_jobs(parent_id=parent_id)

    assert (parent.status, parent.attempts) == ("completed", 1), parent.error
    assert sorted(c.type for c in children) == [
        "character.extract",
        "image.generate",
        "image.generate",
        "novel.split",
    ]
    assert all(c.status == "completed" and c.user_id == "reader-1" for c in children)
    assert {c.payload["novel_id"] for c in children} == {"xyj"}  # one novel_id for every child
    assert {c.result["novel_id"] for c in children} == {"xyj"}
    result = parent.result
    assert result["novel_id"] == "xyj"
    split = result["split"]
    assert split["chapter_count"] == 6 and split["manifest_key"] == "novels/xyj/manifest.json"
    assert [c["number"] for c in split["chapters"]] == [None, 1, 2, 3, 4, 5]

    cast = result["cast"]["characters"]
    assert {c["name"] for c in cast} == {"孙悟空", "玉皇大帝", "须菩提祖师"}
    assert cast[0]["name"] == "孙悟空"
    assert cast[0]["mentions"] > cast[1]["mentions"] >= cast[2]["mentions"] >= 2
    assert result["skipped"] == [{"character": "玉皇大帝", "reason": "no visual_prompt"}]

    portraits = {p["character"]: p for p in result["portraits"]}
    assert portraits.keys() == {"孙悟空", "须菩提祖师"}
    for name, portrait in portraits.items():
        [image] = portrait["images"]
        assert image["key"] == f"portraits/xyj/{portrait['job_id']}/0.png"
        assert image["url"] == f"https://media.example.test/{image['key']}"
        body = s3.get_object(Bucket=r2_env["R2_BUCKET_NAME"], Key=image["key"])["Body"]
        assert body.read() == PNG_BYTES
        submitted = [s.json() for s in cineqo.fal.submissions]
        assert {"prompt": PROMPTS[name], "image_size": "square_hd", "num_images": 1} in submitted
    assert result["failed"] == []
    assert len(cineqo.fal.submissions) == 2

    shown = cineqo.cli("jobs", "show", str(parent_id))
    for child in children:
        assert str(child.id) in shown
    cineqo.assert_no_secrets(caplog.text, shown)


async def test_a_failed_portrait_is_reported_and_a_failed_split_fails_the_pipeline(
    cineqo: Any,
) -> None:
    cineqo.openai.responder = model
    cineqo.fal.script.submit_replies = [Reply(status=422, body={"detail": "prompt too long"})]
    good_text = cineqo.xiyouji(2).decode("utf-8")
    binary = cineqo.novel_file("cover.png", PNG_BYTES)

    with_failure, broken = await cineqo.run_many(
        [
            ("novel.process", {"text": good_text, "portraits": 2}),
            ("novel.process", {"source": str(binary)}),
        ]
    )

    assert with_failure.status == "completed", with_failure.error
    [failed] = with_failure.result["failed"]
    assert failed["type"] == "image.generate" and failed["status"] == "failed"
    assert (
        failed["error"] == "PermanentFailure: fal submission failed with HTTP 422: prompt too long"
    )
    statuses = sorted(p["status"] for p in with_failure.result["portraits"])
    assert statuses == ["completed", "failed"]
    # Without a novel_id every child files under the pipeline's own job id.
    novel_id = f"job-{with_failure.id}"
    assert with_failure.result["novel_id"] == novel_id
    assert with_failure.result["split"]["manifest_key"] == f"novels/{novel_id}/manifest.json"
    [portrait] = [p for p in with_failure.result["portraits"] if p["status"] == "completed"]
    assert portrait["images"][0]["key"] == f"portraits/{novel_id}/{portrait['job_id']}/0.png"

    assert (broken.status, broken.attempts) == ("failed", 1)
    assert re.fullmatch(
        r"PermanentFailure: novel.split job \d+ failed: PayloadError: source '.*cover.png': "
        r"this is a PNG image, not a text file",
        broken.error,
    ), broken.error
    assert len(cineqo.fal.submissions) == 2


def test_bad_pipeline_options_fail_before_any_child() -> None:
    from jobrunner import PayloadError
    from jobrunner_cineqo import plugin

    model = plugin.handlers["novel.process"].payload
    assert model is not None
    for payload, message in [
        ({"text": "x", "portraits": 99}, "portraits: Input should be less than or equal to 20"),
        ({"text": "x", "output_format": "gif"}, "output_format: Input should be 'jpeg' or 'png'"),
        ({"text": "x", "image_model": "bad model"}, "image_model: must be a model name"),
        ({"text": "x", "image_size": "huge size"}, "image_size: must be a preset name"),
        ({"text": "x", "key_prefix": "a/../b"}, "key_prefix: unsafe storage key"),
        ({"source": "a.txt", "text": "x"}, "not both"),
        ({"max_characters": 3}, "give 'text' (a string) or 'source'"),
    ]:
        with pytest.raises(PayloadError, match=re.escape(message)):
            model.validate(payload, job_type="novel.process")


def test_main_characters_are_the_most_mentioned_with_a_visual_prompt() -> None:
    cast = [
        {"name": "b", "mentions": 5, "visual_prompt": "b look"},
        {"name": "a", "mentions": 9, "visual_prompt": "a look"},
        {"name": "c", "mentions": 7, "visual_prompt": None},
        {"name": "d", "mentions": 1, "visual_prompt": "d look"},
    ]
    chosen, skipped = main_characters(cast, 3)
    assert [c["name"] for c in chosen] == ["a", "b"]
    assert skipped == [{"character": "c", "reason": "no visual_prompt"}]
    assert main_characters(cast, 0) == ([], [])
