"""English and Chinese: the language of a page comes from the `jobrunner_lang` cookie (set by
the switch in the header), else from the browser's `Accept-Language`, else English.

Templates write English text through `t("…")` (with `{name}` fields filled from keyword
arguments); `_catalog_zh.ZH` maps each such text to Chinese, and a test checks that every text
the templates use has its translation.
"""

from __future__ import annotations

from collections.abc import Callable

from ._catalog_zh import ZH

LANGUAGES = ("en", "zh")
COOKIE = "jobrunner_lang"
CATALOGS: dict[str, dict[str, str]] = {"en": {}, "zh": ZH}

Translate = Callable[..., str]


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an `Accept-Language` header (`zh-CN,zh;q=0.9,en;q=0.8`):
    the highest weighted tag whose language we have, the first listed on a tie; English when
    none matches."""
    best, best_q = "en", -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if language in LANGUAGES and q > best_q and q > 0:
            best, best_q = language, q
    return best


def choose(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    return negotiate(accept_language)


def translator(language: str) -> Translate:
    catalog = CATALOGS.get(language, {})

    def t(text: str, **values: object) -> str:
        translated = catalog.get(text, text)
        return translated.format(**values) if values else translated

    return t
