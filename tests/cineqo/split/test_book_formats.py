"""EPUB and DOCX uploads through the jobs that read novels, on a real worker and PostgreSQL:
novel.split, character.extract and novel.process take them like text files; hostile ones fail
at once with a readable error and the worker goes on."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from books import Part, docx, epub, parts_of, xhtml
from corpus import XIYOUJI, novel_bytes
from standins.openai_server import answer

from jobrunner_cineqo._novel.decode import decode_novel

pytestmark = pytest.mark.anyio


@functools.cache
def xiyouji_parts(count: int) -> list[Part]:
    """The title page and the first `count` 回 of 西游记."""
    return parts_of(decode_novel(novel_bytes(XIYOUJI)).text)[: count + 1]


def stored_text(cineqo: Any, key: str) -> str:
    return (cineqo.data_dir / key).read_text(encoding="utf-8")


async def test_novel_split_reads_epub_and_docx_from_the_bytes_not_the_name(
    cineqo: Any, r2_env: dict[str, str]
) -> None:
    book = xiyouji_parts(100)
    local = cineqo.novel_file("西游记.txt", epub(book))  # the name says text; the bytes say EPUB
    epub_job = await cineqo.run("novel.split", {"source": str(local), "novel_id": "xyj-epub"})
    s3 = cineqo.use_r2(r2_env)
    s3.put_object(Bucket=r2_env["R2_BUCKET_NAME"], Key="uploads/西游记.docx", Body=docx(book))
    docx_job = await cineqo.run("novel.split", {"source": "uploads/西游记.docx"})

    for job, fmt, method in [
        (epub_job, "epub", "navigation"),
        (docx_job, "docx", "headings-style"),
    ]:
        assert (job.status, job.attempts) == ("completed", 1), job.error
        result = job.result
        assert (result["format"], result["chapter_method"]) == (fmt, method)
        assert (result["encoding"], result["encoding_method"]) == ("utf-8", "xml")
        chapters = result["chapters"]
        assert result["chapter_count"] == len(chapters) == 101
        assert [c["number"] for c in chapters[1:]] == list(range(1, 101))
        assert chapters[1]["title"] == "第一回 灵根育孕源流出 心性修持大道生"
        assert chapters[-1]["title"] == "第一百回 径回东土 五圣成真"
        assert result["warnings"] == []
    first = stored_text(cineqo, epub_job.result["chapters"][1]["key"])
    assert first.startswith("诗曰：") and "\n\n" in first
    key = docx_job.result["manifest_key"]
    manifest = json.loads(s3.get_object(Bucket=r2_env["R2_BUCKET_NAME"], Key=key)["Body"].read())
    assert (manifest["format"], manifest["chapter_method"]) == ("docx", "headings-style")
    cineqo.assert_no_secrets()


async def test_character_extract_and_the_pipeline_take_books_too(cineqo: Any) -> None:
    def model(body: dict[str, Any]) -> Any:
        cast = [
            {
                "name": "孙悟空",
                "aliases": ["美猴王", "石猴"],
                "first_chapter": 1,
                "visual_prompt": "A stone monkey",
                **dict.fromkeys(("gender", "age", "appearance", "clothing", "personality")),
                "role": "protagonist",
            }
        ]
        return answer({"characters": cast})

    cineqo.openai.responder = model
    book = cineqo.novel_file("西游记.epub", epub(xiyouji_parts(3)))
    manuscript = cineqo.novel_file("西游记.docx", docx(xiyouji_parts(3)))
    extract, pipeline = await cineqo.run_many(
        [
            ("character.extract", {"source": str(book), "novel_id": "xyj"}),
            ("novel.process", {"source": str(manuscript), "portraits": 1}),
        ]
    )
    assert (extract.status, extract.attempts) == ("completed", 1), extract.error
    assert extract.result["chapters"] == 3  # the title page is not sent to the model
    assert extract.result["characters"][0]["name"] == "孙悟空"
    assert (pipeline.status, pipeline.attempts) == ("completed", 1), pipeline.error
    split = pipeline.result["split"]
    assert (split["format"], split["chapter_method"], split["chapter_count"]) == (
        "docx",
        "headings-style",
        4,
    )
    assert [p["status"] for p in pipeline.result["portraits"]] == ["completed"]


async def test_hostile_books_fail_at_once_and_the_worker_goes_on(cineqo: Any) -> None:
    book = [Part(title="第一章 开端", text="他走了。"), Part(title="第二章 结尾", text="完。")]
    bomb = epub(book, documents={0: xhtml("第一章", ["<p>" + " " * (4 << 20) + "</p>"])})
    xxe = epub(
        book,
        documents={
            0: '<?xml version="1.0"?><!DOCTYPE html [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&x;</p></body></html>'
        },
    )
    good = epub(book)
    files = {
        "bomb.epub": bomb,
        "xxe.epub": xxe,
        "cut.epub": good[: len(good) // 2],
        "nothing.docx": docx(book, members={"word/document.xml": ""}),
        "good.epub": good,
    }
    paths = {name: cineqo.novel_file(name, data) for name, data in files.items()}
    jobs = await cineqo.run_many(
        [("novel.split", {"source": str(path), "encoding": "gbk"}) for path in paths.values()]
    )
    *bad, fine = jobs
    messages = [
        "expands more than 100 times its compressed size; is it a zip bomb?",
        "declares XML entities (<!ENTITY …>), which are refused",
        "damaged or cut short: its ZIP directory cannot be read",
        "this Word document has no word/document.xml: it holds no text",
    ]
    for job, message in zip(bad, messages, strict=True):
        assert (job.status, job.attempts) == ("failed", 1), job.error
        assert job.error.startswith("PayloadError: source '"), job.error
        assert message in job.error, job.error
        assert "root:" not in job.error  # nothing of /etc/passwd was read
    assert (fine.status, fine.attempts) == ("completed", 1), fine.error
    assert fine.result["warnings"] == [
        "'encoding' applies to plain-text files; ignored for this EPUB"
    ]
    assert not (cineqo.data_dir / "novels" / f"job-{bad[0].id}").exists()
