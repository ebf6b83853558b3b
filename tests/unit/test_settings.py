from __future__ import annotations

import pytest

from jobrunner import ConfigurationError, Settings
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
        ({"JOBRUNNER_LOG_FORMAT": "xml"}, "log_format"),
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
