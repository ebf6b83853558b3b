"""jobrunner: drain (see ``benchmarks._scenarios.drain``)."""

from benchmarks._scenarios import drain
from benchmarks.scenarios._jobrunner import JobrunnerAdapter

run = drain(JobrunnerAdapter())
