"""`jobrunner run --reload`: the worker restarts on a source change and stops cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import anyio
import pytest

from jobrunner._cli._parser import build_parser
from jobrunner._cli._reload import changed, child_command, poll_changes, snapshot, watch_roots
from jr_support import JOBRUNNER

PLUGIN = """
import jobrunner

plugin = jobrunner.Plugin("reloadme")
VERSION = {version}


@plugin.handler("reloadme.version")
async def version(ctx):
    return VERSION
"""
STARTED = r"worker [^\s:]+:(\d+):\w+ started"


class Lines:
    """Lines of a subprocess's stream, read in a thread; `wait_for` consumes them in order."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.seen = 0
        self.closed = False
        self.cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                while self.seen < len(self.lines):
                    self.seen += 1
                    found = re.search(pattern, self.lines[self.seen - 1])
                    if found:
                        return found
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    pytest.fail(f"no line matched {pattern!r}:\n{''.join(self.lines)}")
                self.cond.wait(left)

    def text(self) -> str:
        with self.cond:
            return "".join(self.lines)


def _run_job(cwd: Path, env: dict[str, str]) -> object:
    done = subprocess.run(
        [JOBRUNNER, "enqueue", "reloadme.version", "--wait"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    _job_id, result = done.stdout.split("\n", 1)
    return json.loads(result)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_reload_restarts_the_worker_and_stops_cleanly(plugin_env, tmp_path: Path):
    env = plugin_env("reloadme-plugin", "reloadme", "reloadme_plugin", PLUGIN.format(version=1))
    env.update(DATABASE_URL="sqlite:///jobs.db", JOBRUNNER_LOG_LEVEL="info")
    env.pop("JOBRUNNER_LOG_FORMAT", None)
    source = tmp_path / "site" / "reloadme_plugin.py"
    reloader = subprocess.Popen(
        [JOBRUNNER, "run", "--reload", "--plugin", "reloadme", "--shutdown-timeout", "5s"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = Lines(reloader.stderr)
    try:
        log.wait_for(r"--reload: watching \.py files in .*" + re.escape(str(tmp_path)))
        first = int(log.wait_for(STARTED)[1])
        assert _run_job(tmp_path, env) == 1

        source.write_text(PLUGIN.format(version=2))
        log.wait_for(r"reloadme_plugin\.py.* changed")
        second = int(log.wait_for(STARTED)[1])
        assert second != first
        assert not _alive(first), "the old worker was stopped before the new one started"
        assert _run_job(tmp_path, env) == 2

        # A broken plugin stops the worker; the reloader waits for the fix.
        source.write_text("this is not Python\n")
        log.wait_for(r"worker exited with code 1; it restarts on the next change")
        source.write_text(PLUGIN.format(version=3))
        third = int(log.wait_for(STARTED)[1])
        assert _run_job(tmp_path, env) == 3

        reloader.send_signal(signal.SIGTERM)
        assert reloader.wait(timeout=60) == 0, log.text()
    finally:
        if reloader.poll() is None:
            reloader.kill()
            reloader.wait()
    log.wait_for(r"worker \S+ stopped")
    pids = {int(pid) for pid in re.findall(STARTED, log.text())}
    assert {first, second, third} <= pids
    assert not [pid for pid in pids if _alive(pid)], "no worker is left behind"


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--reload"],
        ["run", "--reload", "-p", "cineqo", "--plugin", "diag,hello", "--burst"],
        ["run", "--reload", "--queue", "a", "--queue=-odd", "--metrics-port", "8467"],
        ["run", "--reload", "--no-listen", "--poll-interval", "2s", "--concurrency", "7"],
        ["run", "--reload", "--listen", "--no-auto-migrate", "--database-url", "sqlite:///x.db"],
    ],
)
def test_the_child_gets_the_same_options_without_reload(argv):
    parser = build_parser()
    given = parser.parse_args(argv)
    command = child_command(given, python="/bin/python")
    assert command[:4] == ["/bin/python", "-m", "jobrunner._cli", "run"]
    assert "--reload" not in command
    again = parser.parse_args(command[3:])
    assert vars(again) == {**vars(given), "reload": False}


def test_snapshot_sees_python_sources_and_skips_caches_and_venvs(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("a = 1\n")
    (tmp_path / "notes.txt").write_text("not watched\n")
    for skipped in (".git", "__pycache__", "node_modules", "venv"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "x.py").write_text("x = 1\n")
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    single = tmp_path / "elsewhere.py"
    single.write_text("s = 1\n")

    before = snapshot([tmp_path / "pkg", single])
    assert set(before) == {tmp_path / "pkg" / "a.py", single}
    assert set(snapshot([tmp_path])) == {tmp_path / "pkg" / "a.py", single}

    (tmp_path / "pkg" / "a.py").write_text("a = 22\n")
    (tmp_path / "pkg" / "b.py").write_text("b = 1\n")
    single.unlink()
    (tmp_path / "notes.txt").write_text("changed, still not watched\n")
    (tmp_path / "__pycache__" / "x.py").write_text("x = 2\n")
    after = snapshot([tmp_path / "pkg", single])
    assert changed(before, after) == {tmp_path / "pkg" / "a.py", tmp_path / "pkg" / "b.py", single}
    assert changed(after, after) == set()


@pytest.mark.anyio
async def test_polling_reports_a_touched_file(tmp_path: Path):
    source = tmp_path / "handler.py"
    source.write_text("x = 1\n")
    stop, first = anyio.Event(), anyio.Event()
    changes = poll_changes([tmp_path], stop, interval=0.05)

    async def touch_after_baseline() -> None:
        # The baseline is taken on the first iteration; touch until it is reported.
        n = 0
        while not first.is_set():
            n += 1
            os.utime(source, ns=(n * 10**9, n * 10**9))
            await anyio.sleep(0.05)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(touch_after_baseline)
            found = await anext(changes)
            first.set()
    assert found == {source}
    stop.set()
    with anyio.fail_after(30):
        assert [batch async for batch in changes] == [], "stop ends the iteration"


def test_watch_roots_cover_cwd_jobrunner_and_the_plugin(plugin_env, tmp_path: Path):
    env = plugin_env("reloadme-plugin", "reloadme", "reloadme_plugin", PLUGIN.format(version=1))
    code = (
        "import sys, pathlib; from jobrunner._cli._reload import watch_roots; "
        "print('\\n'.join(map(str, watch_roots(['reloadme', 'missing'], pathlib.Path('/')))))"
    )
    done = subprocess.run(
        [str(Path(JOBRUNNER).with_name("python")), "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    roots = [Path(line) for line in done.stdout.splitlines()]
    import jobrunner

    assert roots[0] == Path("/")
    assert Path(jobrunner.__file__).parent.resolve() in roots
    assert (tmp_path / "site" / "reloadme_plugin.py").resolve() in roots
    assert watch_roots([], tmp_path)[0] == tmp_path.resolve()
