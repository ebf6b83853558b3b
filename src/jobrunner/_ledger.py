"""The attempts a worker holds (claimed, waiting for a slot, or running), by job and by type.

Pure bookkeeping: what may still be claimed for each handler, and which attempts to renew.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping

import attrs

from ._attempt import Attempt
from ._backend import ClaimSlot, Held, Outcome
from ._plugin import Handler


@attrs.define
class Ledger:
    _by_id: dict[int, Attempt] = attrs.field(factory=dict, init=False)
    _by_type: Counter[str] = attrs.field(factory=Counter, init=False)

    def add(self, attempt: Attempt) -> Attempt | None:
        """Hold `attempt`; return the attempt of the same job it replaces, if any (this
        worker lost that job's lease earlier and now claimed it again)."""
        job = attempt.job
        stale = self._by_id.get(job.id)
        self._by_id[job.id] = attempt
        self._by_type[job.type] += 1
        return stale

    def remove(self, attempt: Attempt) -> None:
        """Release `attempt`'s slot (the job's entry stays if a newer attempt holds it)."""
        job = attempt.job
        if self._by_id.get(job.id) is attempt:
            del self._by_id[job.id]
        self._by_type[job.type] -= 1

    def get(self, job_id: int) -> Attempt | None:
        return self._by_id.get(job_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Attempt]:
        return iter(list(self._by_id.values()))

    def of_type(self, job_type: str) -> int:
        """Attempts of `job_type` not yet ended (a replaced stale one still counts until it
        ends: its handler may still run)."""
        return self._by_type[job_type]

    def slots(self, handlers: Iterable[Handler], free_total: int) -> list[ClaimSlot]:
        """What the next claim may take of each type: `free_total` in all, and never past a
        handler's own concurrency."""
        if free_total <= 0:
            return []
        slots = []
        for handler in handlers:
            free = free_total
            if handler.concurrency is not None:
                free = min(free, handler.concurrency - self._by_type[handler.type])
            if free > 0:
                slots.append(
                    ClaimSlot(
                        type=handler.type,
                        free=free,
                        max_attempts=handler.max_attempts,
                        lease=handler.lease,
                    )
                )
        return slots

    def held(self, unwritten: Iterable[Outcome], leases: Mapping[str, float]) -> list[Held]:
        """The attempts whose leases to renew: those held here, and those whose outcome is
        not written yet (renewed with the longest lease: their type is not known)."""
        held = [Held(id=a.job.id, attempt=a.job.attempts, lease=a.handler.lease) for a in self]
        longest = max(leases.values(), default=30.0)
        held += [Held(id=o.id, attempt=o.attempt, lease=longest) for o in unwritten]
        return held
