"""graphile-worker: latency (see ``benchmarks._scenarios.latency``)."""

from benchmarks._scenarios import latency
from benchmarks.scenarios._graphile import GraphileAdapter

run = latency(GraphileAdapter())
