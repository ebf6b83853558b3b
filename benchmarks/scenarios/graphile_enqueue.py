"""graphile-worker: enqueue (see ``benchmarks._scenarios.enqueue``)."""

from benchmarks._scenarios import enqueue
from benchmarks.scenarios._graphile import GraphileAdapter

run = enqueue(GraphileAdapter())
