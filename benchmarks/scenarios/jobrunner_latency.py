"""jobrunner: latency (see ``benchmarks._scenarios.latency``)."""

from benchmarks._scenarios import latency
from benchmarks.scenarios._jobrunner import JobrunnerAdapter

run = latency(JobrunnerAdapter())
