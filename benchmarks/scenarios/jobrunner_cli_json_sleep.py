"""jobrunner-cli-json: sleep (see ``_jobrunner_cli.py`` and ``benchmarks._scenarios.sleep``)."""

from benchmarks._scenarios import sleep
from benchmarks.scenarios._jobrunner_cli import JobrunnerCliAdapter, noted

run = noted(
    sleep(
        JobrunnerCliAdapter(name="jobrunner-cli-json", log_format="json", handler="sleep"),
        log_lines=True,
    )
)
