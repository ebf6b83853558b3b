"""The documentation site: every public name has a reference entry, every page is in the menu,
and links that leave docs/ point at the repository. scripts/test builds it with --strict."""

from __future__ import annotations

import importlib.util
import re
from types import SimpleNamespace

import jobrunner
import jobrunner.testing
from jr_support import REPO

REFERENCE = (REPO / "docs" / "reference.md").read_text("utf-8")
MKDOCS = (REPO / "mkdocs.yml").read_text("utf-8")


def test_every_public_name_has_a_reference_entry():
    documented = set(re.findall(r"^::: (jobrunner(?:\.testing)?\.\w+)$", REFERENCE, re.M))
    public = {f"jobrunner.{n}" for n in jobrunner.__all__ if n != "__version__"}
    public |= {f"jobrunner.testing.{n}" for n in jobrunner.testing.__all__}
    assert documented == public


def test_every_english_page_is_in_the_menu():
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    in_nav = set(re.findall(r":\s+(\S+\.md)$", MKDOCS, re.M))
    assert in_nav == pages


def test_links_out_of_docs_point_at_the_repository():
    spec = importlib.util.spec_from_file_location("hooks", REPO / "scripts" / "mkdocs_hooks.py")
    assert spec and spec.loader
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    config = {"repo_url": "https://example.org/r/"}

    def page(uri: str) -> SimpleNamespace:
        return SimpleNamespace(file=SimpleNamespace(src_uri=uri))

    text = (
        "[a](plugins.md#x) [b](../examples/webapp/app.py) [c](../examples/plugin-hello) "
        "[d](https://x.org/y) [e](#here) [f](../CHANGELOG.md#unreleased)"
    )
    assert hooks.on_page_markdown(text, page("cli.md"), config, None) == (
        "[a](plugins.md#x) [b](https://example.org/r/blob/main/examples/webapp/app.py) "
        "[c](https://example.org/r/tree/main/examples/plugin-hello) [d](https://x.org/y) "
        "[e](#here) [f](https://example.org/r/blob/main/CHANGELOG.md#unreleased)"
    )
    nested = "[z](../../examples/deploy) [y](deployment.md)"
    assert hooks.on_page_markdown(nested, page("zh/troubleshooting.md"), config, None) == (
        "[z](https://example.org/r/tree/main/examples/deploy) [y](deployment.md)"
    )
