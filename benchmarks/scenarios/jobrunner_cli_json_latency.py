"""jobrunner-cli-json: latency (see ``_jobrunner_cli.py`` and ``benchmarks._scenarios.latency``)."""

from benchmarks._scenarios import latency
from benchmarks.scenarios._jobrunner_cli import JobrunnerCliAdapter, noted

run = noted(
    latency(JobrunnerCliAdapter(name="jobrunner-cli-json", log_format="json", handler="latency"))
)
