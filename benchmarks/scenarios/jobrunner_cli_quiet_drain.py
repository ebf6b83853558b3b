"""jobrunner-cli-quiet: drain (see ``_jobrunner_cli.py`` and ``benchmarks._scenarios.drain``)."""

from benchmarks._scenarios import drain
from benchmarks.scenarios._jobrunner_cli import JobrunnerCliAdapter, noted

run = noted(
    drain(JobrunnerCliAdapter(name="jobrunner-cli-quiet", log_level="warning"), log_lines=True)
)
