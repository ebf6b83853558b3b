"""graphile-worker: idle (see ``benchmarks._scenarios.idle``)."""

from benchmarks._scenarios import idle
from benchmarks.scenarios._graphile import GraphileAdapter

run = idle(GraphileAdapter())
