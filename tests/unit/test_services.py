"""`finishing`: a maintenance statement in flight when the worker stops is let finish."""

from __future__ import annotations

import anyio
import pytest

from jobrunner import DatabaseError, _services

pytestmark = pytest.mark.anyio


async def _statement(seconds: float, value: str) -> str:
    await anyio.sleep(seconds)
    return value


async def test_a_statement_in_flight_finishes_although_its_loop_is_cancelled():
    got = []

    async def loop() -> None:
        got.append(await _services.finishing(_statement(0.2, "done")))
        await anyio.sleep(10)  # the cancellation lands here instead

    async with anyio.create_task_group() as tg:
        tg.start_soon(loop)
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert got == ["done"]


async def test_a_statement_that_never_answers_is_given_up(monkeypatch):
    monkeypatch.setattr(_services, "STATEMENT_GRACE", 0.05)
    with pytest.raises(DatabaseError, match="did not answer within"):
        await _services.finishing(_statement(5, "late"))
