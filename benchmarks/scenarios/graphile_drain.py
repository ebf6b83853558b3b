"""graphile-worker: drain (see ``benchmarks._scenarios.drain``)."""

from benchmarks._scenarios import drain
from benchmarks.scenarios._graphile import GraphileAdapter

run = drain(GraphileAdapter())
