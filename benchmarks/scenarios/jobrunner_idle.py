"""jobrunner: idle (see ``benchmarks._scenarios.idle``)."""

from benchmarks._scenarios import idle
from benchmarks.scenarios._jobrunner import JobrunnerAdapter

run = idle(JobrunnerAdapter())
