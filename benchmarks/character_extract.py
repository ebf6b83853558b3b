"""Benchmark: character extraction over the whole 西游记 through the local OpenAI stand-in.

    .venv/bin/python benchmarks/character_extract.py [--latency 0.2] [--concurrency 4]

The stand-in answers every call after `--latency` seconds, like a model would, naming the
well-known characters whose names occur in the chunk. Prints the number of chunks and LLM
calls, the prompt tokens sent against the novel's own size (same estimator; target <= 1.3x)
and the wall time. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import lzma
import re
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cineqo"))

from standins.openai_server import OpenAIStandIn, Reply, answer  # noqa: E402

from jobrunner_cineqo._cast.chunks import ChapterText, estimate_tokens  # noqa: E402
from jobrunner_cineqo._cast.llm import CastExtractor  # noqa: E402
from jobrunner_cineqo._cast.merge import CastOptions  # noqa: E402

NOVEL = ROOT / "tests/data/novels/zh_xiyouji_utf8_crlf.txt.xz"  # the repository's own copy
HEADING = re.compile(r"^第[一二三四五六七八九十百零〇]+回")
CHAPTER_MARK = re.compile(r"\[Chapter (\d+)\]")

# What a well-behaved model would name: canonical name first, then aliases.
CAST = {
    "孙悟空": ["悟空", "行者", "孙行者", "美猴王", "齐天大圣", "大圣", "石猴", "弼马温"],
    "唐僧": ["三藏", "唐三藏", "玄奘", "江流儿"],
    "猪八戒": ["八戒", "猪悟能", "悟能", "天蓬元帅"],
    "沙僧": ["沙和尚", "悟净", "沙悟净", "卷帘大将"],
    "白龙马": ["小白龙", "玉龙三太子", "龙马"],
    "观音菩萨": ["观音", "观世音", "南海菩萨"],
    "如来佛祖": ["如来", "佛祖"],
    "玉皇大帝": ["玉帝", "玉皇"],
    "太上老君": ["老君"],
    "唐太宗": ["太宗", "唐王"],
    "须菩提祖师": ["菩提祖师"],
    "二郎神": ["二郎真君", "显圣真君", "杨戬"],
    "哪吒": ["哪吒三太子"],
    "托塔李天王": ["李天王", "李靖"],
    "太白金星": ["金星", "长庚星"],
    "牛魔王": ["大力王", "平天大圣"],
    "红孩儿": ["圣婴大王"],
    "铁扇公主": ["罗刹女"],
    "白骨精": ["白骨夫人"],
    "黄袍怪": ["奎木狼"],
    "东海龙王": ["敖广"],
    "镇元大仙": ["镇元子"],
    "黄眉大王": ["黄眉老佛"],
    "金角大王": [],
    "银角大王": [],
    "魏征": [],
    "泾河龙王": [],
    "陈光蕊": [],
    "殷温娇": [],
    "蜘蛛精": [],
}


def split_chapters(path: Path) -> list[ChapterText]:
    """A tiny local split on 第…回 lines (the real splitter lives in _chapters.py)."""
    chapters: list[ChapterText] = []
    title, body = "", []
    for line in lzma.decompress(path.read_bytes()).decode("utf-8").splitlines():
        if HEADING.match(line.strip()):
            if title:
                chapters.append(
                    ChapterText(index=len(chapters) + 1, title=title, text="\n".join(body))
                )
            title, body = line.strip(), []
        elif title:
            body.append(line)
    chapters.append(ChapterText(index=len(chapters) + 1, title=title, text="\n".join(body)))
    return chapters


def model(body: dict[str, Any]) -> Reply:
    """Up to 8 characters whose names occur in the excerpt, most named first, all fields set."""
    excerpt = body["messages"][-1]["content"].split("\n\n[Chapter ", 1)[-1]
    first = int(CHAPTER_MARK.findall("[Chapter " + excerpt)[0])
    seen = {name: sum(excerpt.count(n) for n in (name, *aliases)) for name, aliases in CAST.items()}
    present = sorted((n for n in seen if seen[n]), key=lambda n: -seen[n])[:8]
    characters = [
        {
            "name": name,
            "aliases": [a for a in CAST[name] if a in excerpt],
            "gender": "男",
            "age": "不详",
            "appearance": "面貌奇特，身形矫健",
            "clothing": "披挂整齐",
            "personality": "性情刚烈",
            "role": "protagonist" if name == "孙悟空" else "supporting",
            "first_chapter": first,
            "visual_prompt": "A figure from Journey to the West in ornate classical Chinese dress",
        }
        for name in present
    ]
    return answer({"characters": characters})


async def run(args: argparse.Namespace) -> dict[str, Any]:
    chapters = split_chapters(NOVEL)
    with OpenAIStandIn(latency=args.latency) as server:
        server.responder = model
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=0)
        async with client:
            extractor = CastExtractor(client=client, model="bench", concurrency=args.concurrency)
            started = time.perf_counter()
            result = await extractor.extract_cast(
                chapters, CastOptions(chunk_tokens=args.chunk_tokens)
            )
            wall = time.perf_counter() - started
        sizes = [estimate_tokens(r.user_text) for r in server.completions()]
    usage = result.to_json()["usage"]
    raw_tokens = sum(estimate_tokens(c.text) for c in chapters)
    clean_tokens = sum(
        estimate_tokens("\n".join(line.strip() for line in c.text.splitlines() if line.strip()))
        for c in chapters
    )
    return {
        "chapters": len(chapters),
        "chunks": usage["chunks"],
        "llm_calls": usage["llm_calls"],
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "novel_tokens_raw": raw_tokens,
        "novel_tokens_clean": clean_tokens,
        "ratio_vs_raw": round(usage["prompt_tokens"] / raw_tokens, 3),
        "ratio_vs_clean": round(usage["prompt_tokens"] / clean_tokens, 3),
        "largest_user_message_tokens": max(sizes),
        "wall_s": round(wall, 2),
        "top_cast": [(c.name, c.mentions, c.first_chapter) for c in result.characters[:8]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--chunk-tokens", type=int, default=6000)
    report = anyio.run(run, parser.parse_args())
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
