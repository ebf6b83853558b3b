"""jobrunner under a global limit above its own concurrency: drain."""

from benchmarks._scenarios import drain
from benchmarks.scenarios._jobrunner import LimitedAdapter

run = drain(LimitedAdapter())
