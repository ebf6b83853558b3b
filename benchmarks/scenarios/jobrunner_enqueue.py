"""jobrunner: enqueue (see ``benchmarks._scenarios.enqueue``)."""

from benchmarks._scenarios import enqueue
from benchmarks.scenarios._jobrunner import JobrunnerAdapter

run = enqueue(JobrunnerAdapter())
