from __future__ import annotations

from jobrunner._secrets import mask_url, redact


def test_mask_url():
    assert mask_url("postgresql://u:pw@h:5/d") == "postgresql://u:***@h:5/d"
    assert mask_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert mask_url("host=h password=pw dbname=d") == "host=h password=*** dbname=d"


def test_redact_removes_env_secrets_and_url_passwords(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-verysecret123")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2pw@db/x")
    text = "call failed with sk-verysecret123 at postgresql://app:hunter2pw@db/x (hunter2pw)"
    out = redact(text)
    assert "sk-verysecret123" not in out
    assert "hunter2pw" not in out
    assert "postgresql://app:***@db/x" in out
