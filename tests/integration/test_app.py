"""`jobrunner run --app module:plugin`: a project's own handlers, without packaging."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jobrunner._cli._parser import build_parser
from jobrunner._cli._reload import child_command, watch_roots
from jobrunner._discovery import load_app
from jobrunner._errors import ConfigurationError, PluginError, PluginLoadError, PluginNotFound
from jobrunner._sqlite import SQLiteBackend
from jr_docs import code_blocks, jobrunner_commands, shell_lines
from jr_support import JOBRUNNER, REPO

HANDLERS = """
from jobrunner import JobContext, Plugin

plugin = Plugin("mine")


@plugin.handler("mine.double")
async def double(ctx: JobContext) -> int:
    return 2 * ctx.payload["n"]


def make_plugin() -> Plugin:
    other = Plugin("made")

    @other.handler("made.hello")
    async def hello(ctx: JobContext) -> str:
        return "hello"

    return other


not_a_plugin = 42
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with handlers in `mine.py`, and a SQLite database beside them."""
    (tmp_path / "mine.py").write_text(HANDLERS)
    return tmp_path


def jr(cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True):
    full = {**os.environ, "DATABASE_URL": "sqlite:///jobs.db", **(env or {})}
    for name in ("JOBRUNNER_PLUGINS", "JOBRUNNER_APP", "PYTHONPATH"):
        if not env or name not in env:
            full.pop(name, None)
    out = subprocess.run(
        [JOBRUNNER, *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=120
    )
    if check and out.returncode != 0:
        raise AssertionError(f"jobrunner {' '.join(args)} → {out.returncode}\n{out.stderr}")
    return out


def show(cwd: Path, job_id: str, **kwargs) -> dict:
    return json.loads(jr(cwd, "jobs", "show", job_id, "--json", **kwargs).stdout)


def test_run_app_runs_the_projects_handlers_from_the_current_directory(project):
    job = jr(project, "enqueue", "mine.double", "--payload", '{"n": 21}').stdout.strip()
    noop = jr(project, "enqueue", "diag.noop").stdout.strip()
    jr(project, "run", "--app", "mine:plugin", "--burst")
    assert (show(project, job)["status"], show(project, job)["result"]) == ("completed", 42)
    assert show(project, noop)["status"] == "pending", "alone, --app loads no installed plugin"
    jr(project, "run", "--app", "mine:plugin", "--plugin", "diag", "--burst")
    assert show(project, noop)["status"] == "completed"


def test_jobrunner_app_and_a_factory_function(project):
    job = jr(project, "enqueue", "made.hello").stdout.strip()
    jr(project, "run", "--burst", env={"JOBRUNNER_APP": "mine:plugin, mine:make_plugin"})
    assert show(project, job)["result"] == "hello"
    listed = {
        p["name"]: p
        for p in json.loads(jr(project, "plugins", "--json", "--app", "mine:make_plugin").stdout)
    }
    assert listed["made"]["app"] == "mine:make_plugin"
    assert listed["made"]["job_types"]["made.hello"]["ready"] is True


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        ("mine", 2, "--app 'mine': write module:attribute, e.g. myjobs:plugin"),
        ("nowhere:plugin", 2, "--app 'nowhere:plugin': no module named 'nowhere' in "),
        ("mine:missing", 1, "--app 'mine:missing': module mine ("),
        ("mine:not_a_plugin", 1, "--app 'mine:not_a_plugin' is int, not a jobrunner.Plugin"),
        ("broken:plugin", 1, "--app 'broken:plugin' failed to load: ModuleNotFoundError: "),
    ],
)
def test_a_bad_app_is_one_line_naming_it(project, spec, code, message):
    (project / "broken.py").write_text("import not_installed_anywhere\n")
    out = jr(project, "run", "--app", spec, check=False)
    assert out.returncode == code, out.stderr
    assert out.stderr.startswith(f"jobrunner: error: {message}"), out.stderr
    assert len(out.stderr.splitlines()) == 1


def test_an_app_job_type_that_an_installed_plugin_has_is_refused(project):
    (project / "clash.py").write_text(
        "from jobrunner import Plugin\nplugin = Plugin('clash')\n"
        "plugin.handler('diag.noop')(lambda ctx: None)\n"
    )
    out = jr(project, "run", "--app", "clash:plugin", "--plugin", "diag", check=False)
    assert out.returncode == 1
    assert "job type 'diag.noop' is provided by both diag and clash" in out.stderr


def test_load_app_raises_the_documented_errors(project):
    assert load_app("mine:plugin", folder=project).name == "mine"
    assert load_app("mine:make_plugin", folder=project).name == "made"
    with pytest.raises(ConfigurationError):
        load_app(":plugin", folder=project)
    with pytest.raises(PluginNotFound):
        load_app("surely_not_a_module_here:plugin", folder=project)
    with pytest.raises(PluginError):
        load_app("mine:not_a_plugin", folder=project)
    assert not issubclass(PluginError, PluginLoadError)


def test_reload_passes_the_app_on_and_watches_its_module(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("lib")
    (elsewhere / "faraway.py").write_text(HANDLERS)
    args = build_parser().parse_args(["run", "--reload", "--app", "mine:plugin", "--app=x:y"])
    command = child_command(args, python="/bin/python")
    assert command.count("--app=mine:plugin") == 1 and "--app=x:y" in command
    assert vars(build_parser().parse_args(command[3:]))["app"] == ["mine:plugin", "x:y"]
    code = (
        "import pathlib, sys; from jobrunner._cli._reload import watch_roots; "
        f"print('\\n'.join(map(str, watch_roots([], pathlib.Path({str(project)!r}), "
        "['faraway:plugin', 'mine:plugin']))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(elsewhere)},
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )
    roots = [Path(line) for line in done.stdout.splitlines()]
    assert roots[0] == project.resolve()
    assert (elsewhere / "faraway.py").resolve() in roots
    assert (project / "mine.py").resolve() in roots
    assert watch_roots([], project, ["mine:plugin"])[0] == project.resolve()


def test_the_getting_started_handler_runs_as_documented(tmp_path):
    """docs/getting-started.md: the module and the two commands, with --burst for --reload."""
    text = (REPO / "docs" / "getting-started.md").read_text("utf-8")
    section = text.split("## Your own handlers, before any packaging", 1)[1].split("\n## ", 1)[0]
    blocks = code_blocks(section)
    [module] = [body for lang, body in blocks if lang == "python"]
    (tmp_path / "myjobs.py").write_text(module)
    [commands] = [body for lang, body in blocks if lang == "bash"]
    run, enqueue = [jobrunner_commands(line)[0] for line in shell_lines("bash", commands)]
    assert run == ["run", "--app", "myjobs:plugin", "--reload"]
    job_id = jr(tmp_path, *[a for a in enqueue if a != "--wait"]).stdout.strip()
    jr(tmp_path, *[a for a in run if a != "--reload"], "--burst")
    assert show(tmp_path, job_id)["result"] == {"greeting": "Hello, Ada!"}


def test_the_getting_started_worker_log_is_what_the_sqlite_default_writes(tmp_path):
    text = (REPO / "docs" / "getting-started.md").read_text("utf-8")
    section = text.split("## Run a worker", 1)[1].split("\n## ", 1)[0]
    [log] = [body for lang, body in code_blocks(section) if lang == "text"]
    documented = [line.split(": ", 1)[1] for line in log.splitlines()]
    # No DATABASE_URL (empty is unset): the SQLite default, ./jobrunner.db.
    env = {"DATABASE_URL": "", "JOBRUNNER_LOG_FORMAT": "text", "JOBRUNNER_LOG_LEVEL": "info"}
    out = jr(tmp_path, "run", "--plugin", "diag", "--burst", env=env)
    written = [line.split(": ", 1)[1] for line in out.stderr.splitlines() if ": " in line]
    starting = re.compile(r"jobrunner starting: SQLite (\S+)/jobrunner\.db table job; plugins diag")
    assert starting.match(documented[0]) and starting.match(written[0])
    assert starting.match(written[0])[1] == str(tmp_path.resolve())
    assert (
        documented[1]
        == written[1]
        == "applied migrations: " + ", ".join(m.label for m in SQLiteBackend("x").migrations())
    )
    started = re.compile(
        r"worker \S+ started: 3 job types, concurrency 5, listening for notifications"
    )
    assert started.fullmatch(documented[2]) and started.fullmatch(written[2])
