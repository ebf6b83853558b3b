"""graphile-worker: sleep (see ``benchmarks._scenarios.sleep``)."""

from benchmarks._scenarios import sleep
from benchmarks.scenarios._graphile import GraphileAdapter

run = sleep(GraphileAdapter())
