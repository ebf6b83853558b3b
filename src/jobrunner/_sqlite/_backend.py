"""SQLite backend: one file shared by the worker processes of one host.

Every write is one `BEGIN IMMEDIATE` transaction. SQLite has a single writer, so a claim
reads its candidates and marks them running while it holds the write lock: no other
connection, in this process or another, can claim the same job. Times are unix epoch
seconds from `clock`, read once the write lock is held. Blocking calls run in worker
threads (see `_thread`).

Under the write lock, queries return one row of JSON rather than one row per job: the
worker thread takes the GIL back after every row it steps through, which is slow while the
event loop is busy, and every other process waits for the lock meanwhile.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .._backend import (
    Backend,
    ClaimSlot,
    Held,
    JobFilter,
    LeaseReport,
    Outcome,
    Rescued,
    TypeStats,
    Wakeup,
    WorkerInfo,
)
from .._job import DEFAULT_MAX_PAYLOAD_BYTES, Job, NewJob
from .._schema import Migration, SchemaState
from .._sql import load_blocks, table_names
from .._status import RUNNABLE_AGAIN, JobStatus, OutcomeKind
from . import _limits as limits
from ._controls import Controls
from ._dashboard import DashboardReads
from ._files import FAILURES, immediate, translate
from ._rows import insert_params, job_from_doc, job_from_row, one_job, rows, utc
from ._schema import PACKAGE, Schema
from ._thread import ThreadedConnection
from ._wakeup import Poller, Wake, deliver, listen

T = TypeVar("T")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _render(text: str, names: dict[str, str]) -> str:
    return text.format(**names)


@attrs.define
class SQLiteBackend(Controls, DashboardReads):
    """Jobs in a SQLite file (default table `job`), in WAL mode.

    `allow_other_tables` lets jobrunner add its tables to a database that already holds
    another application's (refused by default, so a wrong path is not silently written to).
    """

    path: Path = attrs.field(converter=Path)
    table: str = "job"
    clock: Callable[[], float] = time.time
    busy_timeout: float = 30.0
    listen_interval: float = 0.05
    allow_other_tables: bool = False
    statement_timeout: float | None = None  # a local file: nothing to time out (busy_timeout)
    _db: ThreadedConnection = attrs.field(init=False)
    _queries: dict[str, str] = attrs.field(factory=dict, init=False)
    _schema: Schema = attrs.field(init=False)
    _key: str = attrs.field(default="", init=False)
    #: Declared types are not checked: a SQLite column takes any type anyway.
    column_types: Mapping[str, str] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        t = self.table
        tables, objects = table_names(t)
        names = {key: _quote(name) for key, name in (tables | objects).items()}
        names["claim_index_in_schema"] = names["claim_index"]
        render = functools.partial(_render, names=names)
        blocks = load_blocks(PACKAGE, "queries.sql")
        self._queries = {name: render(text) for name, text in blocks.items()}
        self._schema = Schema(
            path=self.path,
            table=t,
            ours=frozenset(tables.values()),
            queries=self._queries,
            render=render,
            allow_other_tables=self.allow_other_tables,
        )
        self._db = ThreadedConnection(self.path, self.busy_timeout)
        # In-process wake-ups are shared by every backend on the same file.
        self._key = str(self.path.resolve())

    def __repr__(self) -> str:
        return f"SQLiteBackend({self.description!r})"

    @property
    def description(self) -> str:
        return f"SQLite {self._key} table {self.table}"

    @property
    def default_poll_interval(self) -> float:
        return 0.2

    # -- plumbing ------------------------------------------------------------------------

    async def open(self) -> None:
        await self._db.open()

    async def aclose(self) -> None:
        await self._db.aclose()

    def _exec(self, conn: sqlite3.Connection, block: str, /, **params: Any) -> sqlite3.Cursor:
        return conn.execute(self._queries[block], params)

    def _one_value(self, conn: sqlite3.Connection, name: str, **params: Any) -> Any:
        """The JSON value a one-row, one-column query returns, decoded."""
        [(text,)] = self._exec(conn, name, **params)
        return json.loads(text)

    async def _write(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        """`fn(connection, now)` in one BEGIN IMMEDIATE transaction."""

        def transaction(conn: sqlite3.Connection) -> T:
            with immediate(conn):
                return fn(conn, self.clock())

        return await self._db.run(transaction)

    async def _fetch(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """The rows of one read-only query (autocommit: no transaction to hold)."""
        return await self._db.run(lambda conn: rows(self._exec(conn, name, **params)))

    # -- schema --------------------------------------------------------------------------

    def migrations(self) -> list[Migration]:
        return self._schema.migrations()

    async def schema_state(self) -> SchemaState:
        return await self._db.run(self._schema.state)

    async def schema_apply(self, plan: Callable[[set[int]], list[Migration]]) -> list[Migration]:
        return await self._db.run(lambda conn: self._schema.apply(conn, plan, self.clock()))

    # -- enqueue -------------------------------------------------------------------------

    async def job_insert_many(
        self,
        jobs: Sequence[NewJob],
        *,
        connection: Any = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> list[int]:
        """Enqueue jobs. `connection`: the caller's sqlite3 connection to the same file, in
        the caller's transaction, used from the caller's thread as sqlite3 requires."""
        if not jobs:
            return []
        params = [insert_params(job, max_payload_bytes) for job in jobs]
        if connection is not None:
            try:
                return self._insert(connection, params, self.clock())
            except FAILURES as exc:
                raise translate(exc, self.path) from None
        ids = await self._write(lambda conn, now: self._insert(conn, params, now))
        deliver(self._key, Wakeup())
        return ids

    def _insert(
        self, conn: sqlite3.Connection, params: list[dict[str, Any]], now: float
    ) -> list[int]:
        ids = []
        params = [
            {**p, "run_at": p["run_at"] if p["run_at"] is not None else now + (p["delay"] or 0.0)}
            for p in params
        ]
        limits.assign_turns(conn, self._exec, params, now)
        for p in params:  # one statement per job, so the ids come back in input order
            if p["unique_key"] is not None:
                held = self._exec(conn, "job_holding_key", key=p["unique_key"]).fetchall()
                if held:  # a pending or running job holds the key: it is the answer
                    ids.append(held[0][0])
                    continue
            [(job_id,)] = self._exec(conn, "job_insert", **p, now=now)
            ids.append(job_id)
        self._exec(conn, "wakeup_jobs")
        return ids

    # -- the worker's hot path -----------------------------------------------------------

    async def job_claim(
        self, *, worker: str, slots: Sequence[ClaimSlot], limit: int, queues: Sequence[str] | None
    ) -> list[Job]:
        slots = [s for s in slots if s.free > 0]
        if not slots or limit <= 0:
            return []
        queues_json = json.dumps(list(queues)) if queues else None

        def claim(conn: sqlite3.Connection, now: float) -> tuple[list[int], str] | None:
            # (-priority, age µs, place, id, slot): best first. Within a type the candidates come in
            # its line's order (turn); `age`, the latest run_at so far in that order, keeps it
            # while types interleave by age (see the PostgreSQL claim).
            picked: list[tuple[int, int, int, int, ClaimSlot]] = []
            allowed = limits.allowances(conn, self._exec, slots, now)
            for a in allowed:
                if a.free <= 0:
                    continue
                found = self._one_value(
                    conn,
                    "job_claim_candidates",
                    type=a.slot.type,
                    now=now,
                    queues=queues_json,
                    capped=json.dumps(limits.capped_users(a)),
                    held_all=a.held_all,
                    exempt=json.dumps(sorted(a.exempt)),
                    free=min(a.free, limit),
                )
                age = 0
                line = limits.within_user_limits(a, found)
                for place, (job_id, priority, _turn, run_at, _user) in enumerate(line):
                    age = max(age, run_at)
                    picked.append((-priority, age, place, job_id, a.slot))
            if not picked:
                return None
            picked.sort(key=lambda p: p[:3])
            chosen = [(job_id, s.max_attempts, s.lease) for *_, job_id, s in picked[:limit]]
            started = Counter(s.type for *_, s in picked[:limit])
            limits.spend(conn, self._exec, started, allowed, now)
            self._exec(conn, "job_claim", now=now, worker=worker, picked=json.dumps(chosen))
            [(claimed,)] = self._exec(conn, "job_get_many", ids=json.dumps([c[0] for c in chosen]))
            return [c[0] for c in chosen], str(claimed)

        found = await self._write(claim)
        if found is None:
            return []
        ids, claimed = found
        try:
            jobs = [job_from_doc(doc) for doc in json.loads(claimed)]
        except RecursionError:
            # A payload nested too deeply for one document: read the jobs one by one, where
            # the bad payload becomes a marker and its job fails instead of the worker.
            jobs = [await self.job_get(job_id) for job_id in ids]
        order = {job_id: n for n, job_id in enumerate(ids)}
        jobs.sort(key=lambda j: order[j.id])  # as picked: best first
        return jobs

    async def job_finish_many(self, *, worker: str, outcomes: Sequence[Outcome]) -> set[int]:
        if not outcomes:
            return set()
        held = json.dumps([[o.id, o.attempt] for o in outcomes])
        table = json.dumps(
            [
                [
                    o.id,
                    o.attempt,
                    o.kind.status,
                    o.kind.refunds_attempt,
                    o.result_json,
                    o.error,
                    o.delay,
                ]
                for o in outcomes
            ]
        )
        ended = [o.id for o in outcomes if o.kind.is_final]
        parked = [o.id for o in outcomes if o.kind is OutcomeKind.WAITING]
        again = {o.id for o in outcomes if o.kind in RUNNABLE_AGAIN}
        limited = [o for o in outcomes if o.kind is OutcomeKind.RATE_LIMITED]

        def finish(conn: sqlite3.Connection, now: float) -> tuple[set[int], bool]:
            accepted = {
                job_id for job_id, _ in self._one_value(conn, "job_owned", held=held, worker=worker)
            }
            if not accepted:
                return accepted, False
            # Before the update: it needs the jobs' types while they are still running.
            [(freed,)] = self._exec(conn, "limited_ended", ids=json.dumps(sorted(accepted)))
            limits.pause_types(conn, self._exec, [o for o in limited if o.id in accepted], now)
            self._exec(conn, "job_finish_many", now=now, worker=worker, outcomes=table)
            woken = 0
            if ended or parked:
                woken = self._exec(
                    conn,
                    "job_wake_parents",
                    now=now,
                    ended=json.dumps(ended),
                    parked=json.dumps(parked),
                ).rowcount
            runnable = bool(woken or freed or accepted & again)
            if runnable:
                self._exec(conn, "wakeup_jobs")
            return accepted, runnable

        accepted, runnable = await self._write(finish)
        if runnable:
            deliver(self._key, Wakeup())
        return accepted

    async def job_extend_leases(self, *, worker: str, held: Sequence[Held]) -> LeaseReport:
        if not held:
            return LeaseReport(owned=frozenset(), cancel_requested=frozenset())
        ids = json.dumps([[h.id, h.attempt] for h in held])
        table = json.dumps([[h.id, h.attempt, h.lease] for h in held])

        def extend(conn: sqlite3.Connection, now: float) -> list[list[int]]:
            owned: list[list[int]] = self._one_value(conn, "job_owned", held=ids, worker=worker)
            if owned:
                self._exec(conn, "job_extend_leases", now=now, worker=worker, held=table)
            return owned

        owned = await self._write(extend)
        return LeaseReport(
            owned=frozenset(job_id for job_id, _ in owned),
            cancel_requested=frozenset(job_id for job_id, cancel in owned if cancel),
        )

    async def job_progress_many(self, *, worker: str, held: Sequence[Held]) -> None:
        if held:
            table = json.dumps([[h.id, h.attempt, h.progress, h.message] for h in held])
            await self._write(
                lambda conn, _: self._exec(conn, "job_progress_many", worker=worker, held=table)
            )

    async def job_checkpoint_set(
        self, *, worker: str, job_id: int, attempt: int, key: str, value_json: str
    ) -> bool:
        found = await self._write(
            lambda conn, _: self._exec(
                conn,
                "job_checkpoint_set",
                id=job_id,
                attempt=attempt,
                worker=worker,
                key=key,
                value=value_json,
            ).fetchall()
        )
        return bool(found)

    async def job_rescue_expired(self, *, limit: int = 1000) -> list[Rescued]:
        def rescue(conn: sqlite3.Connection, now: float) -> list[Rescued]:
            cur = self._exec(conn, "job_rescue_expired", now=now, limit=limit)
            return [Rescued(id=r[0], type=r[1], status=JobStatus(r[2])) for r in cur.fetchall()]

        return await self._write(rescue)

    # -- management ----------------------------------------------------------------------

    async def job_cancel(self, job_id: int) -> Job:
        return await self._write(
            lambda conn, now: one_job(
                rows(self._exec(conn, "job_cancel", id=job_id, now=now)), job_id
            )
        )

    async def job_retry(self, job_id: int) -> Job:
        found = await self._write(
            lambda conn, now: rows(self._exec(conn, "job_retry", id=job_id, now=now))
        )
        if not found:  # not finished: unchanged
            return await self.job_get(job_id)
        return job_from_row(found[0])

    async def job_get(self, job_id: int) -> Job:
        return one_job(await self._fetch("job_get", id=job_id), job_id)

    async def job_list(self, query: JobFilter) -> list[Job]:
        return [job_from_row(r) for r in await self._fetch("job_list", **attrs.asdict(query))]

    async def job_stats(self, *, active_only: bool = False) -> list[TypeStats]:
        name = "job_stats_active" if active_only else "job_stats"
        found = await self._fetch(name, now=self.clock())
        return [TypeStats(**{**r, "status": JobStatus(r["status"])}) for r in found]

    async def job_next_run_in(self, types: Sequence[str]) -> float | None:
        found = await self._fetch(
            "job_next_run_at", types=json.dumps(list(types)), now=self.clock()
        )
        return found[0]["seconds"] if found else None

    async def job_delete_finished_before(self, *, seconds: float, limit: int = 10_000) -> int:
        return await self._write(
            lambda conn, now: (
                self._exec(
                    conn, "job_delete_finished_before", now=now, seconds=seconds, limit=limit
                ).rowcount
            )
        )

    async def job_overdue(self) -> tuple[int, float | None]:
        """(running jobs with an expired lease, seconds the longest-running job has run)."""
        [row] = await self._fetch("job_overdue", now=self.clock())
        return row["expired_leases"], row["longest_running_seconds"]

    # -- workers -------------------------------------------------------------------------

    async def worker_heartbeat(self, info: WorkerInfo) -> None:
        params = attrs.asdict(
            info, filter=lambda a, _: a.name not in {"started_at", "seen_seconds_ago"}
        )
        params["job_types"] = json.dumps(list(info.job_types))
        await self._write(lambda conn, now: self._exec(conn, "worker_heartbeat", **params, now=now))

    async def worker_remove(self, worker_id: str, *, stale_seconds: float = 86400) -> None:
        await self._write(
            lambda conn, now: self._exec(
                conn, "worker_remove", id=worker_id, stale_seconds=stale_seconds, now=now
            )
        )

    async def worker_list(self) -> list[WorkerInfo]:
        found = await self._fetch("worker_list", now=self.clock())
        return [
            WorkerInfo(
                **{
                    **r,
                    "job_types": tuple(json.loads(r["job_types"])),
                    "started_at": utc(r["started_at"]),
                }
            )
            for r in found
        ]

    # -- notifications -------------------------------------------------------------------

    async def notify(self, wakeup: Wakeup) -> None:
        name = "wakeup_jobs" if wakeup.cancel_job_id is None else "wakeup_cancels"
        await self._write(lambda conn, _: self._exec(conn, name))
        deliver(self._key, wakeup)

    async def listen(self, wake: Wake) -> None:
        """Wake on commits from this process at once, and on those from other processes
        within `listen_interval` (a `PRAGMA data_version` poll on a connection of its own)."""
        poller = Poller(self._queries["wakeup_read"], self._queries["job_cancel_requested"])
        db = ThreadedConnection(self.path, self.busy_timeout)
        await listen(db, poller, key=self._key, interval=self.listen_interval, wake=wake)


def _conforms(backend: SQLiteBackend) -> Backend:
    """Never called: the type checker holds SQLiteBackend to the Backend protocol here."""
    return backend
