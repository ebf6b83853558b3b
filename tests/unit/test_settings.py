from __future__ import annotations

import pytest

from jobrunner import ConfigurationError, Settings
from jobrunner._cli._parser import build_parser
from jobrunner._settings import parse_duration, parse_size, reference_table


def test_flags_win_over_environment_which_wins_over_defaults():
    env = {"JOBRUNNER_CONCURRENCY": "7", "JOBRUNNER_POLL_INTERVAL": "2s"}
    assert Settings.load(env).concurrency == 7
    assert Settings.load(env, concurrency=3).concurrency == 3
    assert Settings.load({}).concurrency == 5
    assert Settings.load(env).poll_interval == 2.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("1.5", 1.5), ("250ms", 0.25), ("30s", 30), ("10m", 600), ("7d", 604800)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_sizes():
    assert parse_size("512MB") == 512 << 20
    assert parse_size("1GiB") == 1 << 30
    assert parse_size("4096") == 4096


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JOBRUNNER_CONCURRENCY": "many"}, "JOBRUNNER_CONCURRENCY"),
        ({"JOBRUNNER_CONCURRENCY": "0"}, "concurrency must be at least 1"),
        ({"JOBRUNNER_RETENTION": "forever"}, "not a duration"),
        ({"JOBRUNNER_LISTEN": "perhaps"}, "not a boolean"),
        ({"JOBRUNNER_LOG_FORMAT": "xml"}, "JOBRUNNER_LOG_FORMAT: not one of text, json: 'xml'"),
        ({"JOBRUNNER_LOG_LEVEL": "verbose"}, "JOBRUNNER_LOG_LEVEL: not one of debug, info"),
        ({"JOBRUNNER_METRICS_PORT": "http"}, "JOBRUNNER_METRICS_PORT: not a port number"),
        ({"JOBRUNNER_METRICS_PORT": "70000"}, "use 1 to 65535"),
    ],
)
def test_bad_values_are_clear_errors(env, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.load(env)


def test_describe_masks_the_password():
    settings = Settings.load({"DATABASE_URL": "postgresql://app:s3cret-pw@db:5432/jobs"})
    assert settings.describe()["database_url"] == "postgresql://app:***@db:5432/jobs"


def test_every_setting_is_documented_with_flag_and_environment():
    rows = reference_table()
    assert len(rows) == len(Settings.__attrs_attrs__)
    for flag, env, _default, help_text in rows:
        assert flag.startswith("--") and env and help_text


def test_a_bad_keyword_names_the_keyword():
    with pytest.raises(ConfigurationError, match=r"^concurrency: not a whole number: 'abc'$"):
        Settings.load({"JOBRUNNER_CONCURRENCY": "7"}, concurrency="abc")


def test_levels_and_formats_are_read_in_any_case():
    settings = Settings.load({"JOBRUNNER_LOG_LEVEL": "WARNING", "JOBRUNNER_LOG_FORMAT": "JSON"})
    assert (settings.log_level, settings.log_format) == ("warning", "json")


def test_the_metrics_port_is_a_setting_with_its_variable():
    assert Settings.load({"JOBRUNNER_METRICS_PORT": "8467"}).metrics_port == 8467
    assert Settings.load({}).metrics_port is None
    args = build_parser().parse_args(["run", "--metrics-port", "8467"])
    assert Settings.load({}, metrics_port=args.metrics_port).metrics_port == 8467


def test_help_names_each_value_and_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert " X " not in text
    for shown in (
        "--concurrency N",
        "--shutdown-timeout DURATION",
        "--max-memory SIZE",
        "--database-url URL",
        "--metrics-port PORT",
        "--log-level {debug,info,warning,error}",
        "[env JOBRUNNER_CONCURRENCY; default 5]",
        "[env JOBRUNNER_SHUTDOWN_TIMEOUT; default 30s]",
        "[env JOBRUNNER_MAX_PAYLOAD; default 1MB]",
        "[env JOBRUNNER_LISTEN; default true]",
        "[env JOBRUNNER_METRICS_PORT]",
    ):
        assert shown in text, shown
