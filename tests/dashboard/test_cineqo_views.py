"""The Cineqo plugin's views in the dashboard, over stand-in job rows: chapters, the cast,
portraits, and a running pipeline."""

from __future__ import annotations

import html
import json
import re

import pytest
from cineqo_data import CAST, CHAPTERS, insert_pipeline
from dash_support import client

from jobrunner_cineqo import plugin

pytestmark = pytest.mark.anyio
BASE = "https://media.example.com"


def test_the_plugin_registers_a_view_per_job_type():
    assert set(plugin.views) == {
        "novel.split",
        "character.extract",
        "image.generate",
        "novel.process",
    }
    assert plugin.views["novel.process"].with_children


async def test_each_job_shows_its_view(store, make_app):
    ids = await insert_pipeline(store, BASE)
    async with client(make_app(plugins=["cineqo"])) as c:
        split = (await c.get(f"/jobs/{ids['split']}")).text
        cast = (await c.get(f"/jobs/{ids['cast']}")).text
        image = (await c.get(f"/jobs/{ids['images'][0]}")).text
        pipeline = (await c.get(f"/jobs/{ids['parent']}")).text
        chinese = (await c.get(f"/jobs/{ids['cast']}", headers={"accept-language": "zh"})).text
    chapters = re.search(r'<table class="chapters" id="chapters">(.*?)</table>', split, re.DOTALL)
    assert chapters and all(title in chapters[1] for title in CHAPTERS)
    assert f'href="{BASE}/novels/xyj/chapters/0001.txt"' in chapters[1]
    assert "6,704" in chapters[1]
    table = re.search(r'<table class="cast" id="cast">(.*?)</table>', cast, re.DOTALL)
    assert table
    names = re.findall(r'<td class="name">([^<]+)</td>', table[1])
    assert names == [name for name, *_ in CAST]  # most mentioned first
    assert "美猴王, 齐天大圣, 行者" in table[1] and "3,721" in table[1]
    assert f'<img src="{BASE}/portraits/0.png"' in image and "A portrait of 孙悟空" in image
    assert 'id="stages"' in pipeline
    assert pipeline.count('<img src="') == 4  # four portraits done, the fifth running
    assert "孙悟空" in pipeline and "第八回" in pipeline
    assert "名字" in chinese and "别名" in chinese


async def test_a_view_keeps_only_web_links(store, make_app):
    async with store.runner() as runner:
        job_id = await runner.enqueue("image.generate", {"prompt": "x"})
    result = {
        "images": [{"url": "javascript:alert(1)", "key": "images/1/0.png"}],
        "prompt": "<b>x</b>",
    }
    store.finish([job_id], "completed")
    store.sql("UPDATE {job} SET result = ? WHERE id = ?", json.dumps(result), job_id)
    async with client(make_app(plugins=["cineqo"])) as c:
        page = (await c.get(f"/jobs/{job_id}")).text
    view = page.split('id="plugin-view"')[1].split("</section>")[0]
    assert "javascript:" not in view and "images/1/0.png" in view
    assert "&lt;b&gt;x&lt;/b&gt;" in view
    assert html.unescape(view).count("<b>x</b>") == 1  # as text, once
