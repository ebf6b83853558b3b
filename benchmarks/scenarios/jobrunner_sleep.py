"""jobrunner: sleep (see ``benchmarks._scenarios.sleep``)."""

from benchmarks._scenarios import sleep
from benchmarks.scenarios._jobrunner import JobrunnerAdapter

run = sleep(JobrunnerAdapter())
