"""Stand-in Cineqo jobs for the dashboard's views: rows with results shaped as the handlers
write them (docs/cineqo.md), inserted directly, and portraits as small PNG files."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

NOVEL = "xyj"
CHAPTERS = [
    "第一回 灵根育孕源流出 心性修持大道生",
    "第二回 悟彻菩提真妙理 断魔归本合元神",
    "第三回 四海千山皆拱伏 九幽十类尽除名",
    "第四回 官封弼马心何足 名注齐天意未宁",
    "第五回 乱蟠桃大圣偷丹 反天宫诸神捉怪",
    "第六回 观音赴会问原因 小圣施威降大圣",
    "第七回 八卦炉中逃大圣 五行山下定心猿",
    "第八回 我佛造经传极乐 观音奉旨上长安",
]
CAST = [
    ("孙悟空", ["美猴王", "齐天大圣", "行者"], "protagonist", 3721, 1, (214, 160, 40)),
    ("唐僧", ["唐三藏", "玄奘"], "protagonist", 1890, 8, (200, 90, 60)),
    ("猪八戒", ["悟能", "天蓬元帅"], "supporting", 1410, 8, (120, 140, 200)),
    ("沙僧", ["悟净", "卷帘大将"], "supporting", 820, 8, (90, 150, 120)),
    ("观音菩萨", ["观世音", "南海观音"], "supporting", 410, 6, (170, 120, 190)),
]


def png(color: tuple[int, int, int], size: int = 96) -> bytes:
    """A small PNG: a vertical gradient of `color` (no imaging library needed)."""
    rows = b""
    for y in range(size):
        shade = 0.55 + 0.45 * (1 - y / size)
        pixel = bytes(int(c * shade) for c in color)
        rows += b"\x00" + pixel * size

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def write_portraits(folder: Path) -> None:
    for n, (*_, color) in enumerate(CAST):
        (folder / f"{n}.png").write_bytes(png(color))


def split_result(base: str) -> dict[str, Any]:
    chapters = [
        {
            "index": n + 1,
            "title": title,
            "number": n + 1,
            "volume": None,
            "kind": "chapter",
            "part": None,
            "chars": 6704 - 211 * n,
            "key": f"novels/{NOVEL}/chapters/{n + 1:04d}.txt",
            "url": f"{base}/novels/{NOVEL}/chapters/{n + 1:04d}.txt",
        }
        for n, title in enumerate(CHAPTERS)
    ]
    return {
        "novel_id": NOVEL,
        "encoding": "utf-8",
        "encoding_method": "utf-8",
        "fallback": False,
        "warnings": [],
        "volumes": [],
        "chars": sum(c["chars"] for c in chapters),
        "chapter_count": len(chapters),
        "chapters": chapters,
        "chapters_truncated": False,
        "manifest_key": f"novels/{NOVEL}/manifest.json",
        "manifest_url": f"{base}/novels/{NOVEL}/manifest.json",
    }


def cast_result() -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "chapters": len(CHAPTERS),
        "characters": [
            {
                "name": name,
                "aliases": aliases,
                "gender": None,
                "age": None,
                "appearance": "",
                "clothing": "",
                "personality": "",
                "role": role,
                "first_chapter": first,
                "mentions": mentions,
                "visual_prompt": f"A portrait of {name}",
            }
            for name, aliases, role, mentions, first, _ in CAST
        ],
        "usage": {
            "llm_calls": 12,
            "prompt_tokens": 69000,
            "completion_tokens": 4100,
            "chunks": 12,
            "resumed_chunks": 0,
        },
        "warnings": [],
    }


def image_result(job_id: int, n: int, base: str) -> dict[str, Any]:
    name = CAST[n][0]
    return {
        "images": [
            {
                "url": f"{base}/portraits/{n}.png",
                "key": f"portraits/{NOVEL}/{job_id}/0.png",
                "width": 96,
                "height": 96,
                "content_type": "image/png",
                "seed": 7,
                "bytes": 1200,
            }
        ],
        "request_id": f"req-{job_id}",
        "model": "fal-ai/flux/dev",
        "prompt": f"A portrait of {name}",
        "seed": 7,
        "metadata": {"character": name},
    }


async def insert_pipeline(store: Any, base: str, *, portraits_done: int = 4) -> dict[str, Any]:
    """A `novel.process` job, running, with its split and cast done, `portraits_done` of its
    portraits completed and the next one running. Returns the ids."""
    async with store.runner() as runner:
        parent = await runner.enqueue(
            "novel.process", {"source": "uploads/西游记.txt", "novel_id": NOVEL}, user_id="editor-1"
        )
        split = await runner.enqueue(
            "novel.split", {"source": "uploads/西游记.txt", "novel_id": NOVEL}, parent_id=parent
        )
        cast = await runner.enqueue(
            "character.extract",
            {"split_manifest": f"novels/{NOVEL}/manifest.json"},
            parent_id=parent,
        )
        images = [
            await runner.enqueue(
                "image.generate",
                {"prompt": f"A portrait of {name}", "metadata": {"character": name}},
                parent_id=parent,
            )
            for name, *_ in CAST
        ]
    store.start([parent], progress=0.6, message=f"drawing {len(CAST)} portraits")
    store.finish([split, cast], "completed", ago=120)
    store.sql("UPDATE {job} SET result = ? WHERE id = ?", json.dumps(split_result(base)), split)
    store.sql("UPDATE {job} SET result = ? WHERE id = ?", json.dumps(cast_result()), cast)
    done = images[:portraits_done]
    store.finish(done, "completed", ago=10)
    for n, job_id in enumerate(done):
        result = json.dumps(image_result(job_id, n, base))
        store.sql("UPDATE {job} SET result = ? WHERE id = ?", result, job_id)
    if portraits_done < len(images):
        store.start([images[portraits_done]], progress=0.3, message="fal: in queue")
    return {"parent": parent, "split": split, "cast": cast, "images": images}
