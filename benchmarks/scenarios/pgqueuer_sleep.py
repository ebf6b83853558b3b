"""PgQueuer: sleep (see ``benchmarks._scenarios.sleep``)."""

from benchmarks._scenarios import sleep
from benchmarks.scenarios._pgqueuer import PgQueuerAdapter

run = sleep(PgQueuerAdapter())
