"""docs/testing.md runs as written: each Python block is the file its first line names, and
pytest (in a fresh process, so jobrunner's plugin loads through its entry point) passes them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from jr_docs import code_blocks
from jr_support import REPO

DOC = REPO / "docs" / "testing.md"


def files() -> dict[str, str]:
    out = {}
    for lang, body in code_blocks(DOC.read_text("utf-8")):
        if lang == "python":
            name = re.fullmatch(r"# (\w+\.py)", body.splitlines()[0])
            assert name, f"a block of testing.md does not start with its file name:\n{body}"
            out[name[1]] = body
    return out


def test_the_testing_guide_passes_as_written(tmp_path: Path):
    written = files()
    assert {"myjobs.py", "test_units.py", "test_queue.py"} <= set(written)
    for name, body in written.items():
        (tmp_path / name).write_text(body)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", tmp_path],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tests = sum(body.count("\nasync def test_") for body in written.values())
    passed = int(re.search(r"(\d+) passed", done.stdout)[1])
    # anyio's pytest plugin runs each test on asyncio, and on trio too when trio is installed.
    assert passed in {tests, 2 * tests}, done.stdout


def test_the_plugin_loads_only_its_fixtures(tmp_path: Path):
    code = (
        "import sys, jobrunner.testing.pytest_plugin as p\n"
        "heavy = [m for m in ('anyio', 'psycopg', 'pydantic', 'jobrunner._runner', "
        "'jobrunner._worker', 'jobrunner.testing._run') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "jobrunner_runner" in listed.stdout and "jobrunner_database_url" in listed.stdout
    turned_off = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--fixtures",
            "-p",
            "no:jobrunner",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "jobrunner_runner" not in turned_off.stdout
