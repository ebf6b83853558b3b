"""Both distributions build their own wheel, and a fresh virtualenv with both runs the plugins.

The fresh virtualenv installs the wheels' dependencies from the package index (pip's cache
makes later runs quick). Without an index it skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

from jr_support import REPO

CINEQO_CLIENTS = {"openai", "httpx", "aioboto3"}  # httpx speaks fal's queue protocol
_UNREACHABLE = re.compile(
    r"No matching distribution|Could not find a version|Failed to establish|"
    r"Temporary failure in name resolution|Network is unreachable|ConnectTimeout|ReadTimeout",
    re.IGNORECASE,
)


def build_wheel(source: Path, out: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), source],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = out.glob("*.whl")
    return wheel


def read_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        info = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(zf.read(info).decode())


def metadata(wheel: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """(files in the wheel, its Requires-Dist, its `jobrunner.plugins` entry points)."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(f"{info}/METADATA").decode())
        try:
            entry_points = zf.read(f"{info}/entry_points.txt").decode()
        except KeyError:
            entry_points = ""
    requires = meta.get_all("Requires-Dist") or []
    group = re.search(r"\[jobrunner\.plugins\]\n(.*?)(?:\n\[|\Z)", entry_points, re.DOTALL)
    plugins = {}
    for line in (group[1] if group else "").splitlines():
        if "=" in line:
            name, value = line.split("=", 1)
            plugins[name.strip()] = value.strip()
    return names, requires, plugins


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    return {
        "core": build_wheel(REPO, out / "core"),
        "cineqo": build_wheel(REPO / "plugins" / "cineqo", out / "cineqo"),
    }


def test_core_wheel_holds_only_the_core(wheels):
    names, requires, plugins = metadata(wheels["core"])
    required = {requirement_name(r) for r in requires}  # extras included
    # The test extra may use httpx (the dashboard's tests do); nothing a user installs may.
    shipped = {requirement_name(r) for r in requires if not re.search(r"extra == .test.", r)}
    assert not shipped & CINEQO_CLIENTS, requires
    assert {"anyio", "attrs", "psycopg"} <= required
    assert not [n for n in names if n.startswith("jobrunner_cineqo")]
    assert "jobrunner/_postgres/schema.sql" in names
    assert "jobrunner/_postgres/migrations/0001_initial.sql" in names
    assert plugins == {"diag": "jobrunner._diag:plugin"}


def test_both_wheels_carry_the_license_and_say_what_they_are(wheels):
    for name, wheel in wheels.items():
        with zipfile.ZipFile(wheel) as zf:
            [license_file] = [n for n in zf.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
            assert zf.read(license_file).decode().startswith("MIT License"), name
        meta = read_metadata(wheel)
        assert meta["License-Expression"] == "MIT", name
        assert "Typing :: Typed" in meta.get_all("Classifier"), name
        urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
        assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls), name
        assert meta["Description-Content-Type"] == "text/markdown", name
    assert read_metadata(wheels["cineqo"]).get_payload().startswith("# jobrunner-cineqo")


def test_each_version_is_written_once(wheels):
    namespace: dict = {}
    exec((REPO / "src" / "jobrunner_cineqo" / "_version.py").read_text(), namespace)
    assert read_metadata(wheels["cineqo"])["Version"] == namespace["__version__"]
    exec((REPO / "src" / "jobrunner" / "_version.py").read_text(), namespace)
    assert read_metadata(wheels["core"])["Version"] == namespace["__version__"]
    plugin_project = (REPO / "plugins" / "cineqo" / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in plugin_project and "\nversion =" not in plugin_project


def test_psycopg_binary_is_an_extra_not_a_requirement(wheels):
    requires = read_metadata(wheels["core"]).get_all("Requires-Dist")
    psycopg = [r for r in requires if requirement_name(r) == "psycopg"]
    unconditional = [r for r in psycopg if "extra ==" not in r]
    assert unconditional == ["psycopg[pool]>=3.2"], psycopg
    assert "psycopg[binary]>=3.2; extra == 'binary'" in psycopg, psycopg


def test_plugin_wheel_depends_on_the_core_and_declares_its_entry_point(wheels):
    names, requires, plugins = metadata(wheels["cineqo"])
    unconditional = {requirement_name(r) for r in requires if "extra ==" not in r}
    assert "jobrunner" in unconditional
    assert unconditional >= CINEQO_CLIENTS
    assert plugins == {"cineqo": "jobrunner_cineqo:plugin"}
    assert "jobrunner_cineqo/__init__.py" in names
    assert not [n for n in names if n.startswith("jobrunner/")], "the core is not bundled"


def test_a_fresh_venv_with_both_wheels_lists_both_plugins(wheels, tmp_path):
    venv = tmp_path / "venv"
    # No pip inside the venv: the test's own pip installs into it (--python), which is faster.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            f"{wheels['core']}[binary]",  # as the README installs it: psycopg's own libpq
            wheels["cineqo"],
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if install.returncode != 0:
        ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
        if _UNREACHABLE.search(install.stderr) and not ci:
            pytest.skip(f"the package index is unreachable: {install.stderr.strip()[-300:]}")
        pytest.fail(f"pip install of both wheels failed:\n{install.stderr}")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JOBRUNNER_"))}
    listed = subprocess.run(
        [str(venv / "bin" / "jobrunner"), "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # not the checkout: only the installed wheels may be found
        env=env,
    )
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert set(plugins) >= {"cineqo", "diag"}
    assert plugins["cineqo"]["distribution"] == "jobrunner-cineqo"
    assert "error" not in plugins["cineqo"], plugins["cineqo"]
    assert set(plugins["diag"]["job_types"]) == {"diag.noop", "diag.sleep", "diag.fail"}

    where = subprocess.run(
        [str(python), "-c", "import jobrunner, jobrunner_cineqo; print(jobrunner.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert str(venv) in where.stdout, "jobrunner came from the wheel, not the checkout"
