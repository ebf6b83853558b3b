"""The `openai_standin` pytest fixture: a running `OpenAIStandIn`, stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .openai_server import OpenAIStandIn


@pytest.fixture
def openai_standin() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn() as server:
        yield server
