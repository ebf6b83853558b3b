"""mkdocs hooks (mkdocs.yml): a link from docs/ to a file outside it (`../examples/…`,
`../CHANGELOG.md`) works when the Markdown is read on GitHub or in an editor; on the site it
points at that file in the repository instead."""

from __future__ import annotations

import posixpath
import re
from typing import Any

_LINK = re.compile(r"\]\((?![a-z]+:|#)([^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    repo = str(config["repo_url"]).rstrip("/")
    folder = posixpath.dirname(page.file.src_uri)

    def rewrite(match: re.Match[str]) -> str:
        target = posixpath.normpath(posixpath.join("docs", folder, match[1]))
        if target.startswith("docs/"):
            return match[0]
        kind = "blob" if posixpath.splitext(target)[1] else "tree"
        return f"]({repo}/{kind}/main/{target}{match[2] or ''})"

    return _LINK.sub(rewrite, markdown)
