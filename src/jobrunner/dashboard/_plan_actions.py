"""The actions (POST) on schedules and budgets, through the same `Runner` calls as
`jobrunner schedules` and `jobrunner budgets`; checked and logged like every action."""

from __future__ import annotations

import math
import re

import attrs
from starlette.requests import Request
from starlette.responses import Response

from .._budgets import PERIODS, Period
from .._errors import ConfigurationError, PayloadError
from ._actions import checked_form
from ._site import Site

SCHEDULE_ACTIONS = ("pause", "resume", "remove", "run-now")
BUDGET_ACTIONS = ("set", "remove")


@attrs.define
class PlanActions:
    site: Site

    async def schedule(self, request: Request) -> Response:
        form = await checked_form(self.site, request)
        if isinstance(form, Response):
            return form
        action, name = request.path_params["action"], form.get("name", "").strip()
        if action not in SCHEDULE_ACTIONS:
            return self.site.problem(request, 404, "There is no action {action}.", action=action)
        runner = await self.site.runner()
        if action == "run-now":
            found = [s for s in await runner.schedules() if s.name == name]
            if not found:
                return self._no_schedule(request, name)
            [schedule] = found
            try:
                # Keyed: while the job it made waits or runs, a second click makes no other.
                job_id = await runner.enqueue(
                    schedule.type,
                    schedule.payload,
                    queue=schedule.queue,
                    priority=schedule.priority,
                    key=f"schedule:{schedule.name}:now",
                )
            except PayloadError as exc:  # its payload no longer fits the type's model
                return self.site.problem(request, 400, str(exc))
            self.site.snapshots.invalidate()
            self.site.acted(request, "schedule run-now", [job_id], schedule=name)
            return self.site.back(request, f"/jobs/{job_id}", done="run-now", n=1)
        if action == "remove":
            found_it = await runner.remove_schedule(name)
        else:
            found_it = await runner.pause_schedule(name, paused=action == "pause")
        if not found_it:
            return self._no_schedule(request, name)
        self.site.snapshots.invalidate()
        self.site.acted(request, f"schedule {action}", [], schedule=name)
        return self.site.back(request, "/", done="schedule")

    def _no_schedule(self, request: Request, name: str) -> Response:
        return self.site.problem(request, 404, "There is no schedule {name}.", name=name)

    async def budget(self, request: Request) -> Response:
        form = await checked_form(self.site, request)
        if isinstance(form, Response):
            return form
        action = request.path_params["action"]
        if action not in BUDGET_ACTIONS:
            return self.site.problem(request, 404, "There is no action {action}.", action=action)
        user = form.get("user", "").strip() or None  # empty: the default budget
        unit, period = form.get("unit", "").strip(), form.get("period", "")
        runner = await self.site.runner()
        try:
            if period not in PERIODS:
                raise ConfigurationError(f"a budget's period is daily or monthly, not {period!r}")
            if not unit:
                raise ConfigurationError("a budget needs a unit, e.g. cost_usd or tokens")
            checked: Period = "daily" if period == "daily" else "monthly"
            if action == "remove":
                if not await runner.remove_budget(user_id=user, unit=unit, period=checked):
                    return self.site.problem(request, 404, "There is no such budget.")
                amount, types = None, None
            else:
                amount, types = _amount(form.get("amount")), _types(form.get("types"))
                await runner.set_budget(
                    user_id=user, unit=unit, amount=amount, period=checked, types=types
                )
        except ConfigurationError as exc:
            return self.site.problem(request, 400, str(exc))
        self.site.snapshots.invalidate()
        self.site.acted(
            request,
            f"budget {action}",
            [],
            budget_user=user or "(default)",
            unit=unit,
            period=period,
            amount=amount,
            types=types,
        )
        return self.site.back(request, "/", done="budget")


def _amount(text: str | None) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise ConfigurationError(f"a budget is a number, 0 or more: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"a budget is a number, 0 or more: {text!r}")
    return value


def _types(text: str | None) -> list[str] | None:
    """Job types separated by commas or spaces; none: every type."""
    found = [t for t in re.split(r"[\s,]+", text or "") if t]
    return found or None
