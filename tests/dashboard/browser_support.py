"""A real browser against a real dashboard: Debian's Chromium driven by Playwright (never
`playwright install`), `jobrunner dashboard` and `jobrunner run` as subprocesses, and a small
HTTP server for stand-in images."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest
from cineqo_data import write_portraits
from dash_support import PASSWORD, USER, VIEWER, VIEWER_PASSWORD, Store, _sqlite_store

from jobrunner import NewJob
from jr_support import JOBRUNNER

# Chromium's own background connections are refused on these machines: turn them off.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{what} (CI=true: failing, not skipping)")
    pytest.skip(what)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _missing("no chromium on PATH (apt-get install chromium; scripts/test does)")
    assert path is not None
    return path


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium (Playwright's sync API)."""
    path = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (the test extra has it)")
        raise
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def dashboard(env: dict[str, str], *args: str, log: Path) -> Iterator[str]:
    """`jobrunner dashboard` on a free port; yields its base URL."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [JOBRUNNER, "dashboard", "--port", str(port), *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(url, process, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the dashboard exited: {log.read_text()}")
        try:
            httpx.get(url + "/static/dashboard.css", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"the dashboard did not answer: {log.read_text()}")


@contextmanager
def worker(env: dict[str, str], *args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`jobrunner run` (stopped with SIGTERM, gracefully)."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [JOBRUNNER, "run", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """Serve `folder` over HTTP on a free port (the stand-in for public image URLs)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@attrs.frozen
class Site:
    """A job store, `jobrunner dashboard` on it (and a read-only one), and stand-in images."""

    store: Store
    url: str
    read_only_url: str
    media: str


def run(fn: Any, *args: Any) -> Any:
    """`anyio.run(fn, *args)` in a thread of its own: Playwright's sync API keeps its event
    loop registered in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, fn, *args).result()


def enqueue(store: Store, *jobs: NewJob) -> list[int]:
    async def go() -> list[int]:
        async with store.runner() as runner:
            return await runner.enqueue_many(list(jobs))

    return run(go)


def status_of(store: Store, job_id: int) -> str:
    [(status,)] = store.sql("SELECT status FROM {job} WHERE id = ?", job_id)
    return str(status)


@contextmanager
def site_in(folder: Path) -> Iterator[Site]:
    """A fresh SQLite job store in `folder`, with both dashboards and the image server."""
    store = _sqlite_store(folder / "jobs.db")

    async def migrate() -> None:
        async with store.runner(auto_migrate=True):
            pass

    run(migrate)
    media = folder / "media"
    (media / "portraits").mkdir(parents=True)
    write_portraits(media / "portraits")
    env = {
        **store.env(),
        "JOBRUNNER_DASHBOARD_USER": USER,
        "JOBRUNNER_DASHBOARD_PASSWORD": PASSWORD,
        "JOBRUNNER_DASHBOARD_READONLY_USER": VIEWER,
        "JOBRUNNER_DASHBOARD_READONLY_PASSWORD": VIEWER_PASSWORD,
    }
    with (
        file_server(media) as media_url,
        dashboard(
            env, "--plugin", "cineqo", "--image-source", media_url, log=folder / "dash.log"
        ) as url,
        dashboard(env, "--read-only", log=folder / "dash-ro.log") as read_only_url,
    ):
        yield Site(store=store, url=url, read_only_url=read_only_url, media=media_url)


def new_page(chrome: Any, base: str, **options: Any) -> Any:
    """A page in a fresh browser context (its own cookies), logged in as the admin unless
    `http_credentials` says otherwise."""
    options.setdefault("http_credentials", {"username": USER, "password": PASSWORD})
    context = chrome.new_context(base_url=base, viewport={"width": 1280, "height": 900}, **options)
    return context.new_page()
