"""PgQueuer: drain (see ``benchmarks._scenarios.drain``)."""

from benchmarks._scenarios import drain
from benchmarks.scenarios._pgqueuer import PgQueuerAdapter

run = drain(PgQueuerAdapter())
