"""The CLI's log lines: JSON lines stay valid JSON whatever they hold, every `extra` is kept,
and no secret gets through, in JSON or text, through the handler `setup_logging` installs."""

from __future__ import annotations

import io
import json
import logging
import math
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from jobrunner._logs import setup_logging

MARKER = uuid.uuid4().hex[:12]
SECRETS = {
    "OPENAI_API_KEY": f"sk-proj-{MARKER}",
    "R2_SECRET_ACCESS_KEY": f'r2"quote\\back-{MARKER}',  # JSON escapes it
    "FAL_KEY": f"falid:clé-{MARKER}",  # non-ASCII: escaped with ensure_ascii
}
DB_PASSWORD = f"dbpw-{MARKER}"
FORBIDDEN = [*SECRETS.values(), DB_PASSWORD, "hunter2", "s3cret-kv"]


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{DB_PASSWORD}@db:5432/app")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide logging state: put it back for the other tests."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    names = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing", "logAsyncioTasks")
    flags = {name: getattr(logging, name) for name in names if hasattr(logging, name)}
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = saved
    for name, value in flags.items():
        setattr(logging, name, value)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError(f"cannot show {SECRETS['OPENAI_API_KEY']}")


def _hostile_records(log: logging.Logger) -> int:
    """Log what a handler might; returns how many records were logged."""
    key = SECRETS["OPENAI_API_KEY"]
    messages = [
        "quotes \" and ' and a backslash \\ and a tab \t",
        "line one\nline two\r\nline three",
        'password=hunter2", "injected": "yes',
        "retrying with password=hunter2",  # at the end: `\S+` once ate the closing quote
        "connecting to postgresql://app:hunter2@db:5432/app failed",
        f"plain secrets {key} {SECRETS['R2_SECRET_ACCESS_KEY']} {SECRETS['FAL_KEY']} {DB_PASSWORD}",
        "host=db password='s3cret-kv' dbname=x",
        "a lone surrogate \udcff and \ud800 here",
        "a NUL \x00 byte and control \x1b[31m characters",
        "x" * 200_000 + f" {key}",
        "中文的小说章节, \u2028 and \x85 (line breaks to some readers, not to JSON)",
    ]
    for message in messages:
        log.info(message)
    log.warning("arguments too: %s and %r", key, {"password": "hunter2"})
    log.info("bad arguments %d", "not a number")
    try:
        try:
            raise KeyError(f"missing {key}")
        except KeyError as exc:
            raise RuntimeError(f'upstream refused "{DB_PASSWORD}"\n') from exc
    except RuntimeError:
        log.exception("handler failed with %s", key)
    # The CLI does not collect stacks (`logging._srcfile` is off); a record may still carry one.
    log.handle(
        log.makeRecord(
            log.name,
            logging.INFO,
            "f.py",
            1,
            "with stack",
            (),
            None,
            sinfo=f"Stack (most recent call last):\n  {key}",
        )
    )
    log.info(
        "odd extras",
        extra={
            "novel_id": 42,
            "ratio": math.nan,
            "limit": math.inf,
            "tags": {"a", "b"},
            "blob": b"\x00\xff",
            "nested": {"url": f"postgresql://u:{DB_PASSWORD}@h/d", 3: [key, None, 1.5]},
            "thing": object(),
            "unprintable": Unprintable(),
            "time": "not the line's time",
            f"key-{key}": "a secret in a key",
        },
    )
    log.info("too big for one line", extra={"digits": 10**5000})
    return len(messages) + 6


def _lines(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8")  # strictly: every byte written is valid UTF-8
    assert text.endswith("\n")
    return text[:-1].split("\n")


def _assert_no_secret(text: str) -> None:
    leaked = [secret for secret in FORBIDDEN if secret in text]
    assert leaked == [], leaked


def _one(parsed: list[dict[str, object]], start: str) -> dict[str, object]:
    [found] = [p for p in parsed if str(p["message"]).startswith(start)]
    return found


def test_every_json_line_is_one_json_object_without_secrets(tmp_path, secret_env):
    path = tmp_path / "worker.err.log"
    with path.open("w", encoding="utf-8") as stream:
        setup_logging("info", "json", stream=stream)
        count = _hostile_records(logging.getLogger("jobrunner.job"))
    lines = _lines(path)
    assert len(lines) == count  # a newline in a message never splits its line
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(p, dict) for p in parsed)
    _assert_no_secret(path.read_text("utf-8"))
    _assert_no_secret(json.dumps(parsed, ensure_ascii=False))  # nor once unescaped
    assert _one(parsed, "line one")["message"] == "line one\nline two\r\nline three"
    assert _one(parsed, "password=")["message"] == 'password=*** "injected": "yes'
    assert _one(parsed, "retrying")["message"] == "retrying with password=***"
    assert "postgresql://app:***@db:5432/app" in str(_one(parsed, "connecting")["message"])
    assert _one(parsed, "plain secrets")["message"] == "plain secrets *** *** *** ***"
    assert _one(parsed, "a lone")["message"] == "a lone surrogate \\udcff and \\ud800 here"
    assert _one(parsed, "a NUL")["message"] == "a NUL \x00 byte and control \x1b[31m characters"
    assert _one(parsed, "x" * 10)["message"] == "x" * 200_000 + " ***"
    assert str(_one(parsed, "中文")["message"]).endswith(
        "\u2028 and \x85 (line breaks to some readers, not to JSON)"
    )
    assert _one(parsed, "arguments")["message"] == "arguments too: *** and {'password': '***'}"


def test_json_lines_keep_every_extra_as_json_can_hold_it(tmp_path, secret_env):
    path = tmp_path / "log"
    with path.open("w", encoding="utf-8") as stream:
        setup_logging("info", "json", stream=stream)
        _hostile_records(logging.getLogger("jobrunner.job"))
    parsed = [json.loads(line) for line in _lines(path)]
    odd = _one(parsed, "odd extras")
    assert odd["novel_id"] == 42
    assert (odd["ratio"], odd["limit"]) == ("nan", "inf")
    assert sorted(odd["tags"]) == ["a", "b"]
    assert odd["blob"] == "b'\\x00\\xff'"
    assert odd["nested"] == {"url": "postgresql://u:***@h/d", "3": ["***", None, 1.5]}
    assert str(odd["thing"]).startswith("<object object at")
    assert odd["unprintable"] == "<Unprintable that cannot be shown>"
    assert odd["extra_time"] == "not the line's time"  # the line's own field keeps its name
    assert str(odd["time"]).endswith("Z")
    assert odd["key-***"] == "a secret in a key"
    failed = _one(parsed, "handler failed")
    assert failed["level"] == "error" and failed["message"] == "handler failed with ***"
    assert "Traceback" in str(failed["traceback"]) and "KeyError" in str(failed["traceback"])
    assert _one(parsed, "with stack")["stack"] == "Stack (most recent call last):\n  ***"
    assert "not a number" in str(_one(parsed, "bad arguments")["message"])
    too_big = _one(parsed, "too big")  # the one value JSON cannot take: said so, in one line
    assert "digits" not in too_big and str(too_big["log_error"]).startswith("ValueError")


def test_a_json_line_holds_the_job_fields_and_the_callers_own():
    stream = io.StringIO()
    setup_logging("info", "json", stream=stream)
    fields = {"job_id": 7, "job_type": "novel.split", "attempt": 2, "user_id": None}
    logging.getLogger("jobrunner.job").info(
        "chapter %s done", 3, extra={**fields, "event": "chapter", "novel_id": 42}
    )
    line = json.loads(stream.getvalue())
    assert line == {
        "time": line["time"],
        "level": "info",
        "logger": "jobrunner.job",
        "message": "chapter 3 done",
        "job_id": 7,
        "job_type": "novel.split",
        "attempt": 2,
        "event": "chapter",
        "novel_id": 42,
    }  # a field that is None is left out


def test_text_lines_are_redacted_and_keep_their_traceback(tmp_path, secret_env):
    path = tmp_path / "log"
    with path.open("w", encoding="utf-8") as stream:
        setup_logging("debug", "text", stream=stream)
        _hostile_records(logging.getLogger("jobrunner.job"))
    text = path.read_bytes().decode("utf-8")
    _assert_no_secret(text)
    assert "ERROR   jobrunner.job: handler failed with ***\nTraceback" in text
    assert 'RuntimeError: upstream refused "***"' in text
    assert "a lone surrogate \\udcff and \\ud800 here" in text


def test_a_secret_set_after_logging_started_is_redacted(monkeypatch):
    stream = io.StringIO()
    setup_logging("info", "text", stream=stream)
    log = logging.getLogger("jobrunner")
    late = f"sk-late-{uuid.uuid4().hex}"
    log.info("before: %s", late)
    monkeypatch.setenv("OPENAI_API_KEY", late)
    log.info("after: %s", late)
    before, after = stream.getvalue().splitlines()
    assert before.endswith(f"before: {late}") and after.endswith("after: ***")


def test_json_lines_are_ascii_on_a_stream_that_cannot_take_utf8(tmp_path, secret_env):
    path = tmp_path / "log"
    with path.open("w", encoding="ascii") as stream:
        setup_logging("info", "json", stream=stream)
        _hostile_records(logging.getLogger("jobrunner"))
    raw = path.read_bytes()
    assert raw.isascii()
    parsed = [json.loads(line) for line in raw.decode("ascii").split("\n")[:-1]]
    assert any(str(p["message"]).startswith("中文的小说章节") for p in parsed)
    _assert_no_secret(json.dumps(parsed, ensure_ascii=False))


def test_the_level_filters_and_libraries_are_kept_quiet():
    stream = io.StringIO()
    setup_logging("warning", "text", stream=stream)
    logging.getLogger("jobrunner.job").info("not shown")
    logging.getLogger("jobrunner.job").warning("shown")
    setup_logging("debug", "text", stream=stream)
    logging.getLogger("httpx").info("request sent")
    [line] = stream.getvalue().splitlines()
    assert line.endswith("WARNING jobrunner.job: shown")


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(f"disk full while writing {text[:200]}")


def test_a_failing_stream_reports_the_failure_without_the_secret(capsys, secret_env):
    setup_logging("info", "text", stream=BrokenStream())
    logging.getLogger("jobrunner").info("using %s", SECRETS["OPENAI_API_KEY"])
    err = capsys.readouterr().err
    assert "Logging error in jobrunner" in err and "disk full" in err
    _assert_no_secret(err)


def test_on_the_loop_info_lines_are_written_together_and_in_order():
    stream = io.StringIO()
    setup_logging("info", "text", stream=stream)
    log = logging.getLogger("jobrunner.job")

    def messages() -> list[str]:
        return [line.rsplit(": ", 1)[1] for line in stream.getvalue().splitlines()]

    async def main() -> None:
        log.info("one")
        log.info("two")
        assert messages() == []  # gathered until the loop has run what it has at hand
        await anyio.sleep(0.01)
        assert messages() == ["one", "two"]
        log.info("three")
        log.warning("four")  # a warning goes out at once, after what was gathered
        assert messages() == ["one", "two", "three", "four"]
        log.info("five")
        await anyio.to_thread.run_sync(log.info, "six")  # another thread: at once, in order
        assert messages()[-2:] == ["five", "six"]
        log.info("seven")

    anyio.run(main)
    logging.getLogger().handlers[0].flush()  # as logging.shutdown() does at exit
    assert messages()[-1] == "seven"


def test_a_job_line_record_has_what_logging_would_have_set():
    """The worker's job lines copy a per-level template instead of making each record: the
    record must carry the same attributes, with this line's time, thread and arguments."""
    from jobrunner._joblog import _record

    made = logging.getLogger("jobrunner.job").makeRecord(
        "jobrunner.job", logging.WARNING, "", 0, "job %s", (7,), None
    )
    ours = _record(logging.WARNING, "job %s", (7,), None)
    assert ours.__dict__.keys() == made.__dict__.keys()
    assert ours.getMessage() == "job 7"
    assert (ours.levelname, ours.levelno, ours.name) == ("WARNING", logging.WARNING, made.name)
    assert abs(ours.created - made.created) < 60
    assert ours.msecs == int((ours.created - int(ours.created)) * 1000)

    def in_thread() -> tuple[object, object]:
        record = _record(logging.INFO, "x", (), None)
        return record.thread, record.threadName

    names: list[tuple[object, object]] = []

    thread = threading.Thread(target=lambda: names.append(in_thread()), name="other-thread")
    thread.start()
    thread.join()
    assert names == [(thread.ident, "other-thread")]


def test_a_job_line_honours_the_applications_record_factory():
    from jobrunner._joblog import _record

    default = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = default(*args, **kwargs)
        record.tenant = "acme"
        return record

    logging.setLogRecordFactory(factory)
    try:
        assert _record(logging.INFO, "x", (), None).tenant == "acme"
    finally:
        logging.setLogRecordFactory(default)
