"""Cluster-wide limits, pauses and fair turns on SQLite, inside the backend's write
transactions (blocking; run in its worker thread).

SQLite has one writer: a claim holds the write lock while it counts running jobs, so counts
are exact without the row locks PostgreSQL needs.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._backend import ClaimSlot, Outcome
from .._limits import LimitState, TypeLimits, limit_state, set_params
from ._rows import rows, utc

Exec = Callable[..., sqlite3.Cursor]  # (conn, block name, **params)


@attrs.frozen(kw_only=True)
class Allowance:
    """What one claim may take of a type."""

    slot: ClaimSlot
    free: int
    per_user: int | None = None
    interval: float | None = None  # rate-limited: seconds between two starts
    busy: Mapping[str, int] = attrs.field(factory=dict)  # running jobs by user
    held: frozenset[str] = frozenset()  # users a budget holds back
    held_all: bool = False  # a default budget of 0: every user but the exempt
    exempt: frozenset[str] = frozenset()  # users with a budget of their own


def allowances(
    conn: sqlite3.Connection, run: Exec, slots: Sequence[ClaimSlot], now: float
) -> list[Allowance]:
    """Each slot's `free` cut by its type's cluster-wide limits (SQLite: exact counts), and
    the users its budgets hold back."""
    types = json.dumps([s.type for s in slots])
    found = {r["type"]: r for r in rows(run(conn, "limits_of", types=types, now=now))}
    [(budgeted,)] = run(conn, "budgets_any").fetchall()
    holds = _budget_holds(conn, run) if budgeted else None
    if not found and holds is None:
        return [Allowance(slot=s, free=s.free) for s in slots]
    found_budgets = {s.type: holds(s.type) if holds else {} for s in slots}
    running = dict(run(conn, "running_by_type", types=json.dumps(list(found))).fetchall())
    by_user: dict[str, dict[str, int]] = {}
    for job_type, user_id, count in run(conn, "running_by_user", types=json.dumps(list(found))):
        by_user.setdefault(job_type, {})[user_id] = count
    out = []
    for s in slots:
        lim = found.get(s.type)
        if lim is None:
            out.append(Allowance(slot=s, free=s.free, **found_budgets[s.type]))
            continue
        free = 0 if lim["paused"] else s.free
        if lim["concurrency"] is not None:
            free = min(free, max(lim["concurrency"] - running.get(s.type, 0), 0))
        interval = None
        if lim["rate_count"] is not None:
            interval = lim["rate_seconds"] / lim["rate_count"]
            free = min(free, 1 if lim["rate_open"] else 0)
        out.append(
            Allowance(
                slot=s,
                free=free,
                per_user=lim["per_user"],
                interval=interval,
                busy=by_user.get(s.type, {}) if lim["per_user"] is not None else {},
                **found_budgets[s.type],
            )
        )
    return out


def _budget_holds(conn: sqlite3.Connection, run: Exec) -> Callable[[str], dict[str, Any]]:
    """What budgets hold back, as a function of the job type."""
    [(over,)] = run(conn, "budget_holds_for_types").fetchall()
    [(zeros, owners)] = run(conn, "budget_default_zero").fetchall()
    over_list = json.loads(over)
    zero_list, owner_list = json.loads(zeros), json.loads(owners)

    def applies(types: str | None, job_type: str) -> bool:
        return types is None or job_type in json.loads(types)

    def holds(job_type: str) -> dict[str, Any]:
        zero = [(unit, period) for unit, period, types in zero_list if applies(types, job_type)]
        return {
            "held": frozenset(user for user, types in over_list if applies(types, job_type)),
            "held_all": bool(zero),
            "exempt": frozenset(
                user for user, unit, period in owner_list if (unit, period) in zero
            ),
        }

    return holds


def capped_users(allowance: Allowance) -> list[str]:
    """Users already at their per-user limit, or over a budget: their jobs are not
    candidates."""
    limit = allowance.per_user
    capped = set(allowance.held)
    if limit is not None:
        capped |= {user for user, running in allowance.busy.items() if running >= limit}
    return sorted(capped)


def within_user_limits(allowance: Allowance, candidates: Iterable[list[Any]]) -> list[list[Any]]:
    """Candidates ([id, priority, turn, run_at, user_id], best first) that keep every user
    within its per-user limit."""
    limit = allowance.per_user
    if limit is None:
        return list(candidates)
    taken: Counter[str] = Counter(allowance.busy)
    kept = []
    for candidate in candidates:
        user = candidate[4]
        if user is not None:
            if taken[user] >= limit:
                continue
            taken[user] += 1
        kept.append(candidate)
    return kept


def spend(
    conn: sqlite3.Connection,
    run: Exec,
    started: Counter[str],
    found: Sequence[Allowance],
    now: float,
) -> None:
    """Move the next start of each rate-limited type on by the jobs it started."""
    for a in found:
        if a.interval is not None and started[a.slot.type]:
            n = started[a.slot.type]
            run(conn, "limits_spend", type=a.slot.type, interval=a.interval, n=n, now=now)


def assign_turns(
    conn: sqlite3.Connection, run: Exec, params: Sequence[dict[str, Any]], now: float
) -> None:
    """Give each job to insert its turn: consecutive turns from its user's line, oldest
    `run_at` first (turn 0 for every job of a type that is not fair)."""
    groups: Counter[tuple[str, str]] = Counter((p["type"], p["user_id"] or "") for p in params)
    first: dict[tuple[str, str], int | None] = {}
    for (job_type, user_key), n in groups.items():
        [(fifo,)] = run(conn, "turn_is_fifo", type=job_type).fetchall()
        if fifo:
            first[job_type, user_key] = None
            continue
        [(serving,)] = run(conn, "turn_serving", type=job_type).fetchall()
        [(start,)] = run(
            conn, "turns_take", type=job_type, user_key=user_key, serving=serving, n=n, now=now
        ).fetchall()
        first[job_type, user_key] = start
    nth: Counter[tuple[str, str]] = Counter()
    for p in sorted(params, key=lambda p: p["run_at"]):  # a user's oldest first (stable)
        key = (p["type"], p["user_id"] or "")
        start = first[key]
        p["turn"] = 0 if start is None else start + nth[key]
        nth[key] += 1


def declare(
    conn: sqlite3.Connection, run: Exec, defaults: Mapping[str, TypeLimits], now: float
) -> None:
    for job_type, limits in defaults.items():
        if not limits.any:
            run(conn, "limits_undeclare", type=job_type, now=now)
            continue
        rate = limits.rate
        run(
            conn,
            "limits_declare",
            type=job_type,
            concurrency=limits.concurrency,
            per_user=limits.per_user,
            rate_count=rate.count if rate else None,
            rate_seconds=rate.seconds if rate else None,
            now=now,
        )


def set_limits(
    conn: sqlite3.Connection,
    run: Exec,
    job_type: str,
    limits: TypeLimits,
    fair: bool | None,
    now: float,
) -> None:
    run(conn, "limits_set", **set_params(job_type, limits, fair), now=now)


def listed(conn: sqlite3.Connection, run: Exec) -> list[LimitState]:
    found = []
    for row in rows(run(conn, "limits_list")):
        until = row["paused_until"]
        row["paused_until"] = utc(until) if until is not None else None
        found.append(limit_state(row))
    return found


def paused_queues(conn: sqlite3.Connection, run: Exec) -> dict[str, str | None]:
    return {r["queue"]: r["reason"] for r in rows(run(conn, "queue_pauses_list"))}


def pause_types(
    conn: sqlite3.Connection, run: Exec, limited: Sequence[Outcome], now: float
) -> None:
    """Back-pressure: each rate-limited job pauses its type until its retry is due."""
    for outcome in limited:
        [(job_type,)] = run(conn, "job_type_of", id=outcome.id)
        run(
            conn,
            "type_pause_until",
            type=job_type,
            until=now + outcome.delay,
            reason=outcome.error,
            now=now,
        )
