"""PgQueuer: latency (see ``benchmarks._scenarios.latency``)."""

from benchmarks._scenarios import latency
from benchmarks.scenarios._pgqueuer import PgQueuerAdapter

run = latency(PgQueuerAdapter())
