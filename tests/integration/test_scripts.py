"""The README's two commands: `scripts/run` makes its own virtual environment (a fresh Debian
or Ubuntu refuses installs into the system's Python) and starts the worker from it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jr_support import JOBRUNNER, REPO


def _venv_is_current() -> bool:
    done = subprocess.run(
        ["bash", "-c", f"source {REPO}/scripts/_venv.sh && venv_is_current"], check=False
    )
    return done.returncode == 0


@pytest.mark.skipif(
    not _venv_is_current() and os.environ.get("CI", "").lower() not in {"1", "true", "yes"},
    reason="scripts/run would install into .venv first (run scripts/test once)",
)
def test_scripts_run_starts_a_worker_from_the_repositorys_venv(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBRUNNER_", "VIRTUAL_ENV"))}
    env["DATABASE_URL"] = "sqlite:///jobs.db"
    env["PATH"] = "/usr/bin:/bin"  # no jobrunner on it: the script must find its own
    enqueue = [JOBRUNNER, "enqueue", "diag.sleep", "--payload", '{"seconds": 0}']
    job_id = subprocess.run(
        enqueue, cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    run = subprocess.run(
        [str(REPO / "scripts" / "run"), "--plugin", "diag", "--burst"],
        cwd=tmp_path,  # the worker runs in the caller's directory, where jobs.db is
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "installing" not in run.stderr, "an installed .venv is used as it is"
    shown = subprocess.run(
        [JOBRUNNER, "jobs", "show", job_id, "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(shown.stdout)["result"] == {"slept": 0.0}


def test_a_python_without_venv_support_gets_told_what_to_install(tmp_path: Path):
    """Debian and Ubuntu ship venv's pip apart (pythonX.Y-venv): name the package."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "plugins" / "cineqo").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "_venv.sh", repo / "scripts")
    for name in ("pyproject.toml", "plugins/cineqo/pyproject.toml"):
        (repo / name).write_text("[project]\n")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    python = stubs / "python3"
    # A Python whose venv cannot make pip (no ensurepip), as on a fresh Debian.
    python.write_text(
        f'#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3"; exit 1; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    (stubs / "apt-get").write_text("#!/bin/sh\nexit 100\n")  # never touch the real system
    for stub in (python, stubs / "apt-get"):
        stub.chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", "source scripts/_venv.sh && ensure_venv"],
        cwd=repo,
        env={"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        f"cannot create a virtual environment; install python{version}-venv "
        f"(sudo apt install python{version}-venv) and run this again"
    )
    assert not (repo / ".venv").exists(), "no half-made .venv is left behind"
