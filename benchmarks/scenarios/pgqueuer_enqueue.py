"""PgQueuer: enqueue (see ``benchmarks._scenarios.enqueue``)."""

from benchmarks._scenarios import enqueue
from benchmarks.scenarios._pgqueuer import PgQueuerAdapter

run = enqueue(PgQueuerAdapter())
