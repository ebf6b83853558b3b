"""PostgreSQL backend: psycopg 3 pool, SQL from `queries.sql`, LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, LiteralString

import attrs
from psycopg import sql
from psycopg.rows import dict_row

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
from .._errors import ConfigurationError, JobNotFound, QueryError, SchemaError
from .._job import COLUMNS, Job, NewJob
from .._schema import Migration, SchemaState
from .._secrets import mask_url
from .._sql import load_blocks, load_migrations, table_names
from .._status import JobStatus, OutcomeKind
from .._version import __version__
from ._claimed import ClaimedJob, raw_columns
from ._controls import Controls
from ._dashboard import DashboardReads
from ._listen import Listener
from ._migrate import apply_each
from ._pool import Connection, Pool
from ._support import (
    COLUMN_TYPES,
    _float,
    _insert_many_params,
    _int_array,
    _render,
)

_PACKAGE = "jobrunner._postgres"
# Hot-path statements take their array parameters, and return rows, in the binary format:
# psycopg then packs lists without quoting each element as text.
_BINARY = frozenset({"job_claim", "job_finish_many", "job_extend_leases", "job_insert_many"})
# Batch updates keyed by `= ANY($ids)` are planned for their actual parameters every time:
# a prepared generic plan guesses 10 rows and picks poor joins for batches of hundreds.
_CUSTOM = frozenset(
    {"job_finish_many", "job_complete_many", "job_extend_leases", "job_progress_many"}
)


@attrs.define
class PostgresBackend(Controls, DashboardReads):
    """Jobs in a PostgreSQL table (default `public.job`)."""

    url: str
    schema: str = "public"
    table: str = "job"
    pool_size: int = 10
    prepare: bool = True
    connect_timeout: float = 5.0
    listen_url: str | None = None  # where to LISTEN, when not `url` (e.g. past a pooler)
    listen_check: float = 10.0  # seconds between the LISTEN connection's proofs of life
    listen_answer: float = 5.0  # seconds its own notification may take to come back
    _pool: Pool = attrs.field(init=False)
    _queries: dict[str, LiteralString] = attrs.field(factory=dict, init=False)
    _names: dict[str, sql.Composable] = attrs.field(factory=dict, init=False)
    channel: str = attrs.field(default="", init=False)
    #: What the schema check expects (information_schema spelling).
    column_types: Mapping[str, str] = attrs.field(factory=lambda: dict(COLUMN_TYPES), init=False)

    def __attrs_post_init__(self) -> None:
        t = self.table
        # PostgreSQL limits channel names to 63 bytes (not characters): cut on a byte count.
        self.channel = f"jobrunner_{self.schema}_{t}".encode()[:63].decode("utf-8", "ignore")
        tables, objects = table_names(t)
        self._names = {
            **{key: sql.Identifier(self.schema, name) for key, name in tables.items()},
            **{key: sql.Identifier(name) for key, name in objects.items()},
            # Functions live in the schema too.
            **{
                key: sql.Identifier(self.schema, objects[key])
                for key in (
                    "notify_function",
                    "turn_function",
                    "limits_notify_function",
                    "schedules_notify_function",
                )
            },
            # DROP INDEX names the schema (CREATE INDEX cannot).
            "claim_index_in_schema": sql.Identifier(self.schema, objects["claim_index"]),
            "channel_literal": sql.Literal(self.channel),
            "job_columns": sql.SQL(", ").join(sql.Identifier("job", c) for c in COLUMNS),
            "job_name_literal": sql.Literal(sql.Identifier(self.schema, t).as_string(None)),
        }
        self._pool = Pool(
            self.url,
            size=self.pool_size,
            prepare=self.prepare,
            connect_timeout=self.connect_timeout,
        )
        blocks = load_blocks(_PACKAGE, "queries.sql")
        self._queries = {name: _render(text, self._names) for name, text in blocks.items()}

    def __repr__(self) -> str:
        return f"PostgresBackend({self.description!r})"

    @property
    def description(self) -> str:
        return f"PostgreSQL {mask_url(self.url)} table {self.schema}.{self.table}"

    @property
    def default_poll_interval(self) -> float:
        return 10.0

    @property
    def statement_timeout(self) -> float | None:
        """Seconds a statement may wait for an answer before its connection is abandoned
        (None: no bound). Bulk inserts and migrations are never bounded."""
        return self._pool.statement_timeout

    @statement_timeout.setter
    def statement_timeout(self, seconds: float | None) -> None:
        self._pool.statement_timeout = seconds

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        if not _on_asyncio():
            raise ConfigurationError(
                "the PostgreSQL backend needs asyncio (psycopg's async API is asyncio-only); "
                "run under asyncio, or use the SQLite backend under trio"
            )
        await self._pool.open()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def _fetch(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        query, binary, prepare = self._queries[name], name in _BINARY, name not in _CUSTOM

        async def fetch(conn: Connection) -> list[dict[str, Any]]:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, params, binary=binary, prepare=prepare)
            return await cur.fetchall() if cur.description else []

        return await self._pool.run(fetch)

    # -- schema --------------------------------------------------------------------------

    def migrations(self) -> list[Migration]:
        return [
            Migration(version=v, name=n, sql=_render(text, self._names))
            for v, n, text in load_migrations(_PACKAGE)
        ]

    async def schema_state(self) -> SchemaState:
        where = f"{self.schema}.{self.table}"
        try:
            rows = await self._fetch("schema_version")
        except SchemaError:  # no bookkeeping table: nothing was ever migrated here
            return SchemaState(where=where, version=None)
        found = await self._fetch("schema_columns", {"schema": self.schema, "table": self.table})
        return SchemaState(
            where=where,
            version=rows[0]["version"] if rows else 0,
            applied_by=rows[0]["jobrunner_version"] if rows else None,
            columns={row["column_name"]: row["data_type"] for row in found} or None,
        )

    async def schema_apply(self, plan: Callable[[set[int]], list[Migration]]) -> list[Migration]:
        lock_key = zlib.crc32(f"jobrunner:{self.schema}.{self.table}".encode())
        setup: list[sql.Composed | LiteralString] = [
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)),
            self._queries["migrations_create"],
        ]

        def record(m: Migration) -> tuple[LiteralString, dict[str, Any]]:
            params = {"version": m.version, "name": m.name, "by": __version__}
            return self._queries["migration_record"], params

        return await self._pool.run(
            lambda conn: apply_each(
                conn,
                lock_key=lock_key,
                setup=setup,
                applied_query=self._queries["migrations_applied"],
                record=record,
                plan=plan,
                table=f'"{self.schema}"."{self.table}"',
            ),
            bounded=False,  # a migration's lock waits and retries are its own (apply_each)
        )

    # -- enqueue -------------------------------------------------------------------------

    async def job_insert_many(
        self, jobs: Sequence[NewJob], *, connection: Any = None, max_payload_bytes: int = 1 << 20
    ) -> list[int]:
        if not jobs:
            return []
        if connection is not None:  # the caller's, in the caller's transaction
            return await self._insert(connection, jobs, max_payload_bytes)
        return await self._pool.run(
            lambda conn: self._insert(conn, jobs, max_payload_bytes), bounded=False
        )

    async def _insert(self, conn: Any, jobs: Sequence[NewJob], max_payload_bytes: int) -> list[int]:
        """One statement for the jobs without a key, one per job with one (each returns the
        id of the job that holds its key, when one does); ids in input order."""
        ids: list[int] = [0] * len(jobs)
        plain = [i for i, job in enumerate(jobs) if job.key is None]
        if len(plain) == 1:
            [ids[plain[0]]] = await self._rows(
                conn, "job_insert", jobs[plain[0]].insert_values(max_payload_bytes)
            )
        elif plain:
            params = _insert_many_params([jobs[i] for i in plain], max_payload_bytes)
            for i, job_id in zip(
                plain, await self._rows(conn, "job_insert_many", params), strict=True
            ):
                ids[i] = job_id
        for i, job in enumerate(jobs):
            if job.key is not None:
                ids[i] = await self._insert_keyed(conn, job.insert_values(max_payload_bytes))
        return ids

    async def _insert_keyed(self, conn: Any, params: dict[str, Any]) -> int:
        # Nothing comes back when the job holding the key committed after the statement began
        # (its snapshot cannot see it); the next statement sees it, or inserts if it has ended.
        for _ in range(5):
            found = await self._rows(conn, "job_insert", params)
            if found:
                return found[0]
        raise QueryError(f"could not enqueue with idempotency key {params['unique_key']!r}")

    async def _rows(self, conn: Any, name: str, params: dict[str, Any]) -> list[int]:
        cur = await conn.execute(self._queries[name], params)
        return [row[0] for row in await cur.fetchall()]

    # -- the worker's hot path -----------------------------------------------------------

    async def job_claim(
        self, *, worker: str, slots: Sequence[ClaimSlot], limit: int, queues: Sequence[str] | None
    ) -> list[Job]:
        params = {
            "types": [s.type for s in slots],
            "free": [s.free for s in slots],
            "max_attempts": [s.max_attempts for s in slots],
            "leases": [float(s.lease) for s in slots],
            "queues": list(queues) if queues else None,
            "limit": limit,
            "worker": worker,
        }
        lock, query = self._queries["job_claim_lock"], self._queries["job_claim"]
        types = {"types": params["types"]}

        async def claim(conn: Connection) -> list[Job]:
            cur = conn.cursor(binary=True)
            raw_columns(cur)  # decoded on first use: most columns of a claimed job never are
            # One round trip: BEGIN, lock the limited types' rows, claim, COMMIT. The claim's
            # snapshot is taken after the lock, so it counts what the last claim started.
            async with conn.pipeline(), conn.transaction():
                await conn.execute(lock, types)
                await cur.execute(query, params)
            return list(map(ClaimedJob.from_raw, await cur.fetchall()))

        return await self._pool.run(claim)

    async def job_finish_many(self, *, worker: str, outcomes: Sequence[Outcome]) -> set[int]:
        if not outcomes:
            return set()
        if all(o.kind is OutcomeKind.COMPLETED and o.result_json is None for o in outcomes):
            return await self._complete_many(worker, outcomes)
        parked = [o.id for o in outcomes if o.kind is OutcomeKind.WAITING]
        return await self._ids(
            "job_finish_many",
            {
                "ids": [o.id for o in outcomes],
                "attempts": [o.attempt for o in outcomes],
                "statuses": [o.kind.status.value for o in outcomes],
                "refunded": [o.kind.refunds_attempt for o in outcomes],
                "parked": [o.kind is OutcomeKind.WAITING for o in outcomes],
                "results": [o.result_json for o in outcomes],
                "errors": [o.error for o in outcomes],
                "delays": [float(o.delay) for o in outcomes],
                "final_ids": [o.id for o in outcomes if o.kind.is_final],
                "pause_ids": [o.id for o in outcomes if o.kind is OutcomeKind.RATE_LIMITED],
                "worker": worker,
            },
            binary=True,
            parked=parked,
        )

    async def _complete_many(self, worker: str, outcomes: Sequence[Outcome]) -> set[int]:
        return await self._ids(
            "job_complete_many",
            {
                "ids": _int_array(o.id for o in outcomes),
                "attempts": _int_array(o.attempt for o in outcomes),
                "worker": worker,
            },
        )

    async def _ids(
        self,
        name: str,
        params: dict[str, Any],
        *,
        binary: bool = False,
        parked: Sequence[int] = (),
    ) -> set[int]:
        """The ids a batch update returns (planned for the batch at hand, never prepared);
        then, when the batch parked parents or ended children, job_wake_parents."""
        query = self._queries[name]

        async def run(conn: Connection) -> set[int]:
            cur = await conn.execute(query, params, binary=binary, prepare=False)
            rows = await cur.fetchall()
            ids = {row[0] for row in rows}
            waiting = {row[1] for row in rows if row[1] is not None}
            waiting.update(i for i in parked if i in ids)
            if waiting:  # the batch has committed (autocommit): a fresh snapshot
                await conn.execute(self._queries["job_wake_parents"], {"ids": sorted(waiting)})
            return ids

        return await self._pool.run(run)

    async def job_extend_leases(self, *, worker: str, held: Sequence[Held]) -> LeaseReport:
        if not held:
            return LeaseReport(owned=frozenset(), cancel_requested=frozenset())
        rows = await self._fetch(
            "job_extend_leases",
            {
                "ids": [h.id for h in held],
                "attempts": [h.attempt for h in held],
                "leases": [float(h.lease) for h in held],
                "worker": worker,
            },
        )
        return LeaseReport(
            owned=frozenset(r["id"] for r in rows),
            cancel_requested=frozenset(r["id"] for r in rows if r["cancel_requested"]),
        )

    async def job_progress_many(self, *, worker: str, held: Sequence[Held]) -> None:
        if held:
            await self._fetch(
                "job_progress_many",
                {
                    "ids": [h.id for h in held],
                    "attempts": [h.attempt for h in held],
                    "progress": [None if h.progress is None else float(h.progress) for h in held],
                    "messages": [h.message for h in held],
                    "worker": worker,
                },
            )

    async def job_checkpoint_set(
        self, *, worker: str, job_id: int, attempt: int, key: str, value_json: str
    ) -> bool:
        rows = await self._fetch(
            "job_checkpoint_set",
            {"id": job_id, "attempt": attempt, "worker": worker, "key": key, "value": value_json},
        )
        return bool(rows)

    async def job_rescue_expired(self, *, limit: int = 1000) -> list[Rescued]:
        rows = await self._fetch("job_rescue_expired", {"limit": limit})
        return [Rescued(id=r["id"], type=r["type"], status=JobStatus(r["status"])) for r in rows]

    # -- management ----------------------------------------------------------------------

    async def job_cancel(self, job_id: int) -> Job:
        return self._one(await self._fetch("job_cancel", {"id": job_id}), job_id)

    async def job_retry(self, job_id: int) -> Job:
        rows = await self._fetch("job_retry", {"id": job_id})
        if not rows:
            return await self.job_get(job_id)
        return Job.from_row(rows[0])

    async def job_get(self, job_id: int) -> Job:
        return self._one(await self._fetch("job_get", {"id": job_id}), job_id)

    async def job_list(self, query: JobFilter) -> list[Job]:
        rows = await self._fetch("job_list", attrs.asdict(query))
        return [Job.from_row(r) for r in rows]

    async def job_stats(self, *, active_only: bool = False) -> list[TypeStats]:
        rows = await self._fetch("job_stats_active" if active_only else "job_stats")
        return [
            TypeStats(
                type=r["type"],
                status=JobStatus(r["status"]),
                count=r["count"],
                oldest_pending_seconds=_float(r["oldest_pending_seconds"]),
            )
            for r in rows
        ]

    async def job_next_run_in(self, types: Sequence[str]) -> float | None:
        rows = await self._fetch("job_next_run_at", {"types": list(types)})
        return _float(rows[0]["seconds"]) if rows else None

    async def job_delete_finished_before(self, *, seconds: float, limit: int = 10_000) -> int:
        query = self._queries["job_delete_finished_before"]

        async def delete(conn: Connection) -> int:
            cur = await conn.execute(query, {"seconds": seconds, "limit": limit})
            return cur.rowcount

        return await self._pool.run(delete)

    # -- notifications -------------------------------------------------------------------

    async def notify(self, wakeup: Wakeup) -> None:
        payload = "" if wakeup.cancel_job_id is None else f"cancel:{wakeup.cancel_job_id}"
        await self._fetch("job_notify", {"channel": self.channel, "payload": payload})

    async def listen(self, wake: Callable[[Wakeup], None]) -> None:
        await Listener(
            connect=self._pool.connect_direct,
            url=self.listen_url or self.url,
            channel=self.channel,
            check=self.listen_check,
            answer=self.listen_answer,
        ).run(wake)

    async def job_overdue(self) -> tuple[int, float | None]:
        """(running jobs with an expired lease, seconds the longest-running job has run)."""
        [row] = await self._fetch("job_overdue")
        return row["expired_leases"], _float(row["longest_running_seconds"])

    # -- workers -----------------------------------------------------------------------

    async def worker_heartbeat(self, info: WorkerInfo) -> None:
        await self._fetch(
            "worker_heartbeat",
            {
                "id": info.id,
                "host": info.host,
                "pid": info.pid,
                "version": info.version,
                "job_types": list(info.job_types),
                "concurrency": info.concurrency,
                "running": info.running,
                "processed": info.processed,
            },
        )

    async def worker_remove(self, worker_id: str, *, stale_seconds: float = 86400) -> None:
        await self._fetch("worker_remove", {"id": worker_id, "stale_seconds": stale_seconds})

    async def worker_list(self) -> list[WorkerInfo]:
        rows = await self._fetch("worker_list")
        return [
            WorkerInfo(
                id=r["id"],
                host=r["host"],
                pid=r["pid"],
                version=r["version"],
                job_types=tuple(r["job_types"]),
                concurrency=r["concurrency"],
                running=r["running"],
                processed=r["processed"],
                started_at=r["started_at"],
                seen_seconds_ago=float(r["seen_seconds_ago"]),
            )
            for r in rows
        ]

    @staticmethod
    def _one(rows: list[dict[str, Any]], job_id: int) -> Job:
        if not rows:
            raise JobNotFound(f"no job with id {job_id}")
        return Job.from_row(rows[0])


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio, or no event loop at all
        return False
    return True


def _conforms(backend: PostgresBackend) -> Backend:
    """Never called: the type checker holds PostgresBackend to the Backend protocol here."""
    return backend
