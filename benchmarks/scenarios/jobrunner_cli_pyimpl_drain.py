"""jobrunner-cli-pyimpl: drain with psycopg's pure-Python implementation, what an install without
the ``binary`` extra gets (see ``_jobrunner_cli.py`` and ``benchmarks._scenarios.drain``).
"""

from benchmarks._scenarios import drain
from benchmarks.scenarios._jobrunner_cli import JobrunnerCliAdapter, noted

run = noted(
    drain(JobrunnerCliAdapter(name="jobrunner-cli-pyimpl", psycopg_impl="python"), log_lines=True)
)
