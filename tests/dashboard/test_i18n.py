"""English and Chinese: chosen from the cookie, else Accept-Language; every text translated."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from dash_support import client

from jobrunner import JobStatus
from jobrunner.dashboard import _actions, _i18n, _pages, _plan_actions
from jobrunner.dashboard._catalog_zh import ZH

pytestmark = pytest.mark.anyio

PACKAGE = Path(_i18n.__file__).parent
_T_CALL = re.compile(r"""\bt\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def template_texts() -> set[str]:
    found = set()
    for path in (PACKAGE / "templates").glob("*.html"):
        for match in _T_CALL.finditer(path.read_text("utf-8")):
            found.add(match[1] if match[1] is not None else match[2])
    return found


def problem_texts() -> set[str]:
    """The messages the code passes to `site.problem` as literals."""
    found = set()
    for module in (_actions, _pages, _plan_actions):
        for node in ast.walk(ast.parse(Path(module.__file__).read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "problem"
                and len(node.args) >= 3
                and isinstance(node.args[2], ast.Constant)
            ):
                found.add(node.args[2].value)
    return found


def test_every_text_has_its_chinese():
    dynamic = (
        {s.value for s in JobStatus}
        | set(_actions.ACTIONS)
        | {"status", "type", "queue", "user", "parent", "error", "daily", "monthly"}
    )
    texts = template_texts() | problem_texts() | dynamic
    assert len(texts) > 100
    missing = sorted(texts - set(ZH))
    assert missing == []
    fields = {t: set(re.findall(r"{(\w+)}", t)) for t in texts}
    assert {t: set(re.findall(r"{(\w+)}", ZH[t])) for t in texts} == fields  # same fields


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR,zh-TW;q=0.5,en;q=0.4", "zh"),
        ("fr-FR", "en"),
        ("zh;q=0, en;q=0.1", "en"),
        ("*", "en"),
        ("zh-Hans-CN", "zh"),
        ("en;q=nonsense, zh;q=0.3", "zh"),
    ],
)
def test_accept_language_is_negotiated(header, language):
    assert _i18n.negotiate(header) == language


async def test_the_interface_speaks_chinese_to_a_chinese_browser(sqlite_store):
    from dash_support import access

    from jobrunner.dashboard import create_app

    app = create_app(database_url=sqlite_store.url, env={}, access=access(), plugins=[])
    async with client(app, headers={"accept-language": "zh-CN,zh;q=0.9"}) as c:
        overview = await c.get("/")
        jobs = await c.get("/jobs")
        c.cookies.set("jobrunner_lang", "en")
        english = await c.get("/")
    async with app.router.lifespan_context(app):
        pass
    assert '<html lang="zh-CN">' in overview.text
    assert "概览" in overview.text and "工作进程" in overview.text
    assert "筛选" in jobs.text and "Filter" not in jobs.text
    assert '<html lang="en">' in english.text and "Workers" in english.text
