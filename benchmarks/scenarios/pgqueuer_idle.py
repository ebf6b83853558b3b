"""PgQueuer: idle (see ``benchmarks._scenarios.idle``)."""

from benchmarks._scenarios import idle
from benchmarks.scenarios._pgqueuer import PgQueuerAdapter

run = idle(PgQueuerAdapter())
