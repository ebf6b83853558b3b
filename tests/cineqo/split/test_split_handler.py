"""`novel.split` on a real worker and PostgreSQL: real novels in, stored chapters out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from corpus import ALICE, RULIN, XIYOUJI, novel_bytes

import jobrunner
import jobrunner_cineqo
from jobrunner_cineqo._settings import CineqoSettings
from jobrunner_cineqo._split import SplitPayload
from jobrunner_cineqo._split.handler import bounded_index

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def stored_text(cineqo: Any, key: str) -> str:
    return (cineqo.data_dir / key).read_text(encoding="utf-8")


async def test_a_real_novel_from_a_local_path(cineqo: Any) -> None:
    path = cineqo.novel_file("西游记.txt", novel_bytes(XIYOUJI))
    job = await cineqo.run("novel.split", {"source": str(path), "novel_id": "xyj"})

    assert (job.status, job.attempts, job.error) == ("completed", 1, None)
    assert job.progress == 1.0
    result = job.result
    assert (result["novel_id"], result["encoding"], result["encoding_method"]) == (
        "xyj",
        "utf-8",
        "utf-8",
    )
    assert result["fallback"] is False and result["chapters_truncated"] is False
    chapters = result["chapters"]
    assert result["chapter_count"] == len(chapters) == 101  # title line + 100 回
    assert chapters[0]["kind"] == "front_matter"
    story = chapters[1:]
    assert [c["number"] for c in story] == list(range(1, 101))
    assert story[0]["title"] == "第一回 灵根育孕源流出 心性修持大道生"
    assert story[-1]["title"].startswith("第一百回")
    assert [c["index"] for c in chapters] == list(range(101))

    # Storage holds the text; the row holds only the index.
    first = story[0]
    assert first["key"] == "novels/xyj/chapters/0001.txt"
    text = stored_text(cineqo, first["key"])
    assert len(text) == first["chars"] and "花果山" in text
    assert "\r" not in text
    assert sum(c["chars"] for c in chapters) <= result["chars"]
    assert len(json.dumps(result, ensure_ascii=False)) < 40_000
    manifest = json.loads(stored_text(cineqo, result["manifest_key"]))
    assert result["manifest_key"] == "novels/xyj/manifest.json"
    assert manifest["job_id"] == job.id
    assert manifest["chapters"] == chapters
    cineqo.assert_no_secrets()


async def test_a_table_of_contents_before_the_title_line(cineqo: Any) -> None:
    """The field report: 目录 and 100 entries before the text; the split repairs itself."""
    text = novel_bytes(XIYOUJI).decode("utf-8")
    titles = [line.strip() for line in text.splitlines() if line.startswith("第") and "回 " in line]
    assert len(titles) == 100
    path = cineqo.novel_file(
        "西游记-目录.txt",
        ("目录\r\n" + "\r\n".join(titles) + "\r\n").encode() + novel_bytes(XIYOUJI),
    )
    job = await cineqo.run("novel.split", {"source": str(path)})

    assert (job.status, job.attempts) == ("completed", 1), job.error
    chapters = job.result["chapters"]
    assert job.result["chapter_count"] == 101
    assert [c["number"] for c in chapters[1:]] == list(range(1, 101))
    assert chapters[1]["title"] == "第一回 灵根育孕源流出 心性修持大道生"
    assert chapters[-1]["title"] == "第一百回 径回东土 五圣成真"
    assert job.result["warnings"] == [
        "skipped a table of contents of 100 entries "
        "(第一回 灵根育孕源流出 心性修持大道生 … 第一百回 径回东土 五圣成真)"
    ]
    front = stored_text(cineqo, chapters[0]["key"])
    assert front.startswith("目录\n第一回") and front.endswith("《西游记》吴承恩（明）")


async def test_gb18030_novel_from_an_r2_key(cineqo: Any, r2_env: dict[str, str]) -> None:
    s3 = cineqo.use_r2(r2_env)
    bucket = r2_env["R2_BUCKET_NAME"]
    data = novel_bytes(RULIN)
    s3.put_object(Bucket=bucket, Key="uploads/儒林外史.txt", Body=data)

    job = await cineqo.run("novel.split", {"source": "uploads/儒林外史.txt"})

    assert (job.status, job.attempts) == ("completed", 1), job.error
    result = job.result
    assert (result["encoding"], result["encoding_method"]) == ("gb18030", "gb18030")
    assert result["novel_id"] == f"job-{job.id}"
    chapters = result["chapters"]
    assert len(chapters) == 56  # the table of contents stays in the front matter
    assert chapters[1]["title"] == "第一回 說楔子敷陳大義 借名流隱括全文"
    assert chapters[-1]["number"] == 55
    assert any("table of contents" in w for w in result["warnings"])

    key = chapters[1]["key"]
    assert key == f"novels/job-{job.id}/chapters/0001.txt"
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert stored["ContentType"] == "text/plain; charset=utf-8"
    assert stored["Body"].read().decode("utf-8").startswith("人生南北多歧路")
    assert chapters[1]["url"] == f"https://media.example.test/{key}"
    manifest = s3.get_object(Bucket=bucket, Key=result["manifest_key"])["Body"].read()
    assert json.loads(manifest)["chapters"] == chapters
    cineqo.assert_no_secrets()


async def test_inline_text_with_a_prologue_and_long_chapters(cineqo: Any) -> None:
    long_body = "\n".join(f"第{n}段。" + "他走了很远的路。" * 20 for n in range(12))
    text = f"书名\r\n\r\n楔子\r\n开篇。\r\n第一章 出发\r\n{long_body}\r\n第3章 到达\r\n到了。\r\n"
    job = await cineqo.run("novel.split", {"text": text, "max_chapter_chars": 500})

    assert job.status == "completed", job.error
    result = job.result
    assert (result["encoding"], result["encoding_method"]) == (None, "text")
    kinds = [(c["kind"], c["number"], c["part"]) for c in result["chapters"]]
    assert kinds[:2] == [("front_matter", None, None), ("prologue", None, None)]
    parts = [k for k in kinds if k[1] == 1]
    assert len(parts) > 3 and [p[2] for p in parts] == list(range(1, len(parts) + 1))
    assert all(c["chars"] <= 500 for c in result["chapters"])
    assert any("2" in w for w in result["warnings"])  # chapter 2 is missing: a gap warning
    assert stored_text(cineqo, result["chapters"][-1]["key"]) == "到了。"


async def test_bad_input_fails_at_once_with_a_readable_error(cineqo: Any) -> None:
    png = cineqo.novel_file("cover.png", PNG)
    empty = cineqo.novel_file("empty.txt", b" \r\n\t\n")
    chinese = cineqo.novel_file("gbk.txt", "第一回 甲\n正文。".encode("gbk"))
    nul = cineqo.novel_file("nul.txt", b"chapter one\x00\x00\x01 text")
    cases = [
        ({"source": str(png)}, "source"),
        ({"source": str(empty)}, "empty"),
        ({"source": str(nul)}, "NUL bytes"),
        ({"source": str(chinese), "encoding": "ascii"}, "the file is not valid ascii"),
        ({"text": "第一章\n正文", "source": str(empty)}, "not both"),
        ({}, "give 'text'"),
        ({"source": "../../etc/passwd"}, "'..' segments are not allowed"),
        ({"source": str(cineqo.novels / ".." / ".." / "secret.txt")}, "outside the allowed"),
        ({"source": "/etc/passwd"}, "outside the allowed"),
        ({"source": "https://example.com/novel.txt"}, "not allowed"),
        ({"source": "novels/none.txt"}, "no object is stored under key 'novels/none.txt'"),
        ({"source": str(cineqo.novels / "none.txt")}, "does not exist"),
        ({"source": str(cineqo.novels)}, "is not a regular file"),
        ({"text": "正文", "encoding": "gbk"}, "'encoding' applies to 'source' only"),
        ({"source": str(png), "encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"text": "正文", "max_chapter_chars": 5}, "max_chapter_chars: Input should be greater"),
        ({"text": "正文", "novel_id": "a/b"}, "without '/'"),
        ({"text": "正文", "max_chapter_char": 500}, "max_chapter_char: Extra inputs are not"),
        (["not", "an", "object"], "Input should be a JSON object"),
    ]
    jobs = await cineqo.run_many([("novel.split", payload) for payload, _ in cases])

    for job, (payload, message) in zip(jobs, cases, strict=True):
        assert (job.status, job.attempts) == ("failed", 1), payload
        assert job.error.startswith("PayloadError: "), job.error
        assert message in job.error, (payload, job.error)
    assert "this is a PNG image, not a text file" in jobs[0].error
    assert not (cineqo.data_dir / "novels").exists()  # nothing was written for any of them


async def test_the_size_limit_is_a_clear_permanent_error(cineqo: Any) -> None:
    cineqo.env["CINEQO_MAX_NOVEL_BYTES"] = "1k"
    path = cineqo.novel_file("big.txt", "第一章\n正文。\n".encode() * 200)
    jobs = await cineqo.run_many(
        [("novel.split", {"source": str(path)}), ("novel.split", {"text": "正文。" * 400})]
    )
    for job in jobs:
        assert (job.status, job.attempts) == ("failed", 1)
        assert "over the limit of 1024 bytes (CINEQO_MAX_NOVEL_BYTES)" in job.error or (
            "larger than the limit of 1024 bytes (CINEQO_MAX_NOVEL_BYTES)" in job.error
        ), job.error


async def test_a_storage_failure_is_retried(cineqo: Any) -> None:
    # A file where the storage directory should be: every write fails until it is removed.
    cineqo.root.joinpath("data").write_text("in the way")
    cineqo.env["CINEQO_RETRY_DELAY"] = "0.5"  # time for the test to clear the way
    async with cineqo.runner() as runner:
        job_id = await runner.enqueue("novel.split", {"text": "第一章 甲\n正文。\n第二章 乙\n完。"})
        await cineqo.wait_until(lambda: cineqo.row(job_id)["error"] is not None)
        cineqo.root.joinpath("data").unlink()
        job = await runner.wait_for(job_id, timeout=30)
    assert job.status == "completed"
    assert job.attempts >= 2
    assert len(job.result["chapters"]) == 2
    assert stored_text(cineqo, job.result["chapters"][1]["key"]) == "完。"


def test_the_result_keeps_a_bounded_chapter_index() -> None:
    entries = [{"index": n, "title": "第" + "长" * 50 + "章"} for n in range(1000)]
    shown, cut = bounded_index(entries, limit=10_000)
    assert cut and 0 < len(shown) < 1000
    assert shown == entries[: len(shown)]
    assert len("\n".join(json.dumps(e, ensure_ascii=False) for e in shown).encode()) <= 10_000
    assert bounded_index(entries[:3], limit=10_000) == (entries[:3], False)


def test_payload_errors_are_permanent() -> None:
    payload = jobrunner_cineqo.plugin.handlers["novel.split"].payload
    assert payload is not None
    with pytest.raises(jobrunner.PayloadError, match="not both"):
        payload.validate({"text": "a", "source": "b"}, job_type="novel.split")
    assert issubclass(jobrunner.PayloadError, ValueError)
    request = SplitPayload.model_validate(
        {"source": "novels/a.txt", "encoding": "GBK", "novel_id": 7}
    )
    assert (request.encoding, request.novel_id) == ("gbk", "7")


def test_importing_the_plugin_imports_no_sdk() -> None:
    code = (
        "import sys, jobrunner_cineqo\n"
        "heavy = [m for m in ('openai', 'fal_client', 'aioboto3', 'botocore', 'httpx', 'httpx2')"
        " if m in sys.modules]\n"
        "print(sorted(jobrunner_cineqo.plugin.handlers), heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    handlers = "['character.extract', 'image.generate', 'novel.process', 'novel.split']"
    assert out.stdout.strip() == f"{handlers} []"


def test_the_cli_runs_a_split_end_to_end(cineqo: Any) -> None:
    """Issue 6's integration test: enqueue → `jobrunner run --burst` → chapters stored."""
    path = cineqo.novel_file("alice.txt", novel_bytes(ALICE))
    cineqo.cli("migrate")
    payload = json.dumps({"source": str(path), "novel_id": "alice"})
    job_id = int(cineqo.cli("enqueue", "novel.split", "--payload", payload))
    cineqo.cli("run", "--plugin", "cineqo", "--burst")
    shown = json.loads(cineqo.cli("jobs", "show", str(job_id), "--json"))

    assert (shown["status"], shown["attempts"]) == ("completed", 1)
    chapters = shown["result"]["chapters"]
    assert len(chapters) == 13
    assert chapters[1]["title"] == "CHAPTER I. Down the Rabbit-Hole"
    assert chapters[-1]["title"] == "CHAPTER XII. Alice’s Evidence"
    for chapter in chapters:
        assert len(stored_text(cineqo, chapter["key"])) == chapter["chars"]
    assert (cineqo.data_dir / "novels/alice/manifest.json").is_file()


def test_settings_and_readiness_come_from_the_workers_environment(tmp_path: Path) -> None:
    settings = CineqoSettings.from_env({"CINEQO_DATA_DIR": str(tmp_path)})
    assert settings.allowed_roots == (tmp_path,)  # local storage: its own directory only
    assert settings.max_novel_bytes == 50 * 1024 * 1024
    r2 = {"R2_ENDPOINT_URL": "http://127.0.0.1:9", "R2_BUCKET_NAME": "b"}
    r2 |= {"R2_ACCESS_KEY_ID": "id", "R2_SECRET_ACCESS_KEY": "secret"}
    assert CineqoSettings.from_env(r2).allowed_roots == ()  # R2: no local paths by default
    custom = CineqoSettings.from_env(
        {"CINEQO_ALLOWED_ROOTS": "/srv/a:/srv/b", "CINEQO_MAX_NOVEL_BYTES": "2MB"}
    )
    assert custom.allowed_roots == (Path("/srv/a"), Path("/srv/b"))
    assert custom.max_novel_bytes == 2 * 1024 * 1024

    keys = {"OPENAI_API_KEY": "k", "FAL_KEY": "k"}
    plugin = jobrunner_cineqo.plugin
    assert set(plugin.readiness(keys).values()) == {None}
    partial_r2 = plugin.readiness({**keys, "R2_BUCKET_NAME": "b"})
    assert partial_r2["novel.split"] == (
        "R2 storage is partly configured; missing R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, "
        "R2_SECRET_ACCESS_KEY"
    )
    assert partial_r2["novel.process"] is None  # it only enqueues
    bad = plugin.readiness({**keys, "CINEQO_LLM_CONCURRENCY": "many"})
    assert bad["character.extract"] == "CINEQO_LLM_CONCURRENCY must be an integer, not 'many'"
    relative = plugin.readiness({**keys, "CINEQO_ALLOWED_ROOTS": "novels"})
    assert "must hold absolute paths" in relative["novel.split"]
