"""The dashboard's views of Cineqo's jobs: a novel's chapters, its cast, its portraits, and the
whole pipeline of `novel.process` while it runs and once it is done.

Each function turns a job (and, for the pipeline, its child jobs) into the values of a
template in `views/`; the dashboard renders it with every value escaped. The shapes read here
are the results documented in docs/cineqo.md. Links and images are kept only when they are
http(s) URLs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobrunner import Job, Plugin

MAX_ROWS = 500  # chapters or characters listed on one page

LABELS = {
    "en": {
        "novel": "Novel",
        "encoding": "Encoding",
        "characters_total": "Characters of text",
        "chapters": "Chapters",
        "chapter": "Chapter",
        "title": "Title",
        "kind": "Kind",
        "size": "Characters",
        "manifest": "Manifest",
        "warnings": "Warnings",
        "truncated": "The result lists the first chapters only; the manifest has them all.",
        "more": "more not shown",
        "cast": "Cast",
        "name": "Name",
        "aliases": "Aliases",
        "role": "Role",
        "mentions": "Mentions",
        "first_chapter": "First chapter",
        "model": "Model",
        "usage": "Usage",
        "calls": "LLM calls",
        "tokens": "tokens in / out",
        "portraits": "Portraits",
        "images": "Images",
        "prompt": "Prompt",
        "stage": "Stage",
        "job": "Job",
        "status": "Status",
        "waiting": "not started yet",
        "skipped": "Skipped",
        "failed": "Did not complete",
        "no_image": "no image",
    },
    "zh": {
        "novel": "小说",
        "encoding": "编码",
        "characters_total": "正文字数",
        "chapters": "章节",
        "chapter": "章",
        "title": "标题",
        "kind": "类型",
        "size": "字数",
        "manifest": "目录清单",
        "warnings": "警告",
        "truncated": "结果只列出前面的章节，完整列表见目录清单。",
        "more": "条未显示",
        "cast": "角色",
        "name": "名字",
        "aliases": "别名",
        "role": "定位",
        "mentions": "出现次数",
        "first_chapter": "首次出场",
        "model": "模型",
        "usage": "用量",
        "calls": "LLM 调用",
        "tokens": "输入 / 输出 token",
        "portraits": "人物画像",
        "images": "图片",
        "prompt": "提示词",
        "stage": "阶段",
        "job": "任务",
        "status": "状态",
        "waiting": "尚未开始",
        "skipped": "已跳过",
        "failed": "未完成",
        "no_image": "无图片",
    },
}


def register(plugin: Plugin) -> None:
    """Add the dashboard's views of the four job types to `plugin`."""
    plugin.view("novel.split", template="views/split.html", title="Chapters")(split_view)
    plugin.view("character.extract", template="views/cast.html", title="Cast")(cast_view)
    plugin.view("image.generate", template="views/image.html", title="Images")(image_view)
    plugin.view("novel.process", template="views/pipeline.html", title="Pipeline", children=True)(
        pipeline_view
    )


def web_url(value: Any) -> str | None:
    """`value` when it is an http(s) URL (safe in an href or src), else None."""
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def chapters(result: Mapping[str, Any]) -> dict[str, Any]:
    """A split's summary and its chapter rows (at most MAX_ROWS)."""
    rows = [
        {
            "index": c.get("index"),
            "title": c.get("title") or "",
            "kind": c.get("kind") or "",
            "part": c.get("part"),
            "chars": c.get("chars"),
            "url": web_url(c.get("url")),
        }
        for c in map(_dict, _list(result.get("chapters")))
    ]
    return {
        "novel_id": result.get("novel_id"),
        "encoding": result.get("encoding") or result.get("encoding_method"),
        "chars": result.get("chars"),
        "chapter_count": result.get("chapter_count", len(rows)),
        "chapters": rows[:MAX_ROWS],
        "hidden": max(len(rows) - MAX_ROWS, 0),
        "truncated": bool(result.get("chapters_truncated")),
        "warnings": [str(w) for w in _list(result.get("warnings"))],
        "manifest_url": web_url(result.get("manifest_url")),
        "manifest_key": result.get("manifest_key"),
    }


def cast(result: Mapping[str, Any]) -> dict[str, Any]:
    """An extraction's characters as table rows, most mentioned first, with its usage."""
    people = sorted(
        map(_dict, _list(result.get("characters"))), key=lambda c: -int(c.get("mentions") or 0)
    )
    rows = [
        {
            "name": c.get("name") or "",
            "aliases": [str(a) for a in _list(c.get("aliases"))],
            "role": c.get("role") or "",
            "mentions": c.get("mentions"),
            "first_chapter": c.get("first_chapter"),
        }
        for c in people
    ]
    usage = _dict(result.get("usage"))
    return {
        "model": result.get("model"),
        "characters": rows[:MAX_ROWS],
        "hidden": max(len(rows) - MAX_ROWS, 0),
        "usage": usage,
        "warnings": [
            f"{_dict(w).get('chunk', '?')}: {_dict(w).get('message', w)}"
            for w in _list(result.get("warnings"))
        ],
    }


def images(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "url": web_url(i.get("url")),
            "key": i.get("key"),
            "width": i.get("width"),
            "height": i.get("height"),
        }
        for i in map(_dict, _list(result.get("images")))
    ]


def split_view(job: Job, children: Sequence[Job]) -> dict[str, Any]:
    return {"labels": LABELS, "split": chapters(_dict(job.result))}


def cast_view(job: Job, children: Sequence[Job]) -> dict[str, Any]:
    return {"labels": LABELS, "cast": cast(_dict(job.result))}


def image_view(job: Job, children: Sequence[Job]) -> dict[str, Any]:
    result = _dict(job.result)
    payload = _dict(job.payload)
    metadata = _dict(result.get("metadata") or payload.get("metadata"))
    return {
        "labels": LABELS,
        "images": images(result),
        "prompt": result.get("prompt") or payload.get("prompt"),
        "model": result.get("model") or payload.get("model"),
        "character": metadata.get("character"),
    }


def _stage(jobs: Sequence[Job], job_type: str) -> Job | None:
    found = [j for j in jobs if j.type == job_type]
    return min(found, key=lambda j: j.id) if found else None


def pipeline_view(job: Job, children: Sequence[Job]) -> dict[str, Any]:
    """The pipeline from its children while it runs (their results as they arrive), from its
    own result once it is done."""
    kids = sorted(children, key=lambda j: j.id)
    split, extract = _stage(kids, "novel.split"), _stage(kids, "character.extract")
    result = _dict(job.result)
    split_result = _dict(result.get("split")) or _dict(split.result if split else None)
    cast_result = _dict(result.get("cast")) or _dict(extract.result if extract else None)
    portraits = [
        {
            "character": _dict(_dict(j.payload).get("metadata")).get("character"),
            "job_id": j.id,
            "status": str(j.status),
            "images": images(_dict(j.result)),
            "error": j.error if str(j.status) in {"failed", "cancelled"} else None,
        }
        for j in kids
        if j.type == "image.generate"
    ]
    return {
        "labels": LABELS,
        "stages": [
            {"name": "novel.split", "job": split},
            {"name": "character.extract", "job": extract},
        ],
        "split": chapters(split_result) if split_result else None,
        "cast": cast(cast_result) if cast_result else None,
        "portraits": portraits,
        "skipped": [_dict(s) for s in _list(result.get("skipped"))],
        "failed": [_dict(f) for f in _list(result.get("failed"))],
    }
