from __future__ import annotations

import json
import uuid

from jobrunner._secrets import mask_url, may_hold_secret, redact, register_secrets


def _marker() -> str:
    return uuid.uuid4().hex[:12]


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


def test_redaction_follows_the_environment_as_it_changes(monkeypatch):
    first, second = f"sk-first{_marker()}", f"sk-second{_marker()}"
    assert redact(f"key {first}") == f"key {first}"  # not a secret yet: nothing to hide
    monkeypatch.setenv("OPENAI_API_KEY", first)
    assert redact(f"key {first}") == "key ***"
    monkeypatch.setenv("OPENAI_API_KEY", second)  # the same variable, a new value
    assert redact(f"keys {first} {second}") == f"keys {first} ***"
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("SOME_SERVICE_TOKEN", first)  # a new variable, any name with TOKEN
    assert redact(f"key {first}") == "key ***"


def test_a_registered_environment_is_redacted_with_its_url_password_in_both_forms():
    marker = _marker()
    register_secrets(
        {
            "FAL_KEY": f"falkey{marker}",
            "DATABASE_URL": f"postgresql://app:pw%2F{marker}%40x@db/app",
            "HOME": f"/home/{marker}",  # not a secret name
        }
    )
    out = redact(f"falkey{marker} pw%2F{marker}%40x pw/{marker}@x /home/{marker}")
    assert out == f"*** *** *** /home/{marker}"


def test_secrets_passed_with_the_text_are_redacted_and_so_is_their_url_password():
    marker = _marker()
    url = f"postgresql://app:pw{marker}@db/app"
    assert redact(f"cannot reach {url}", url) == "cannot reach postgresql://app:***@db/app"
    assert redact(f"login failed (pw{marker})", url) == "login failed (***)"
    assert redact(f"no route to {marker}-host", f"{marker}-host") == "no route to ***"


def test_key_value_passwords_are_redacted():
    assert redact("host=db password=s3cret user=app") == "host=db password=*** user=app"
    assert redact("PASSWORD = 'two words' next") == "PASSWORD = *** next"


def test_a_secret_is_also_found_as_json_writes_it(monkeypatch):
    secret = f'q"uote\\back-clé{_marker()}'
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", secret)
    for ensure_ascii in (False, True):
        document = json.dumps({"key": secret}, ensure_ascii=ensure_ascii)
        assert secret not in document  # escaped: a plain search would miss it
        assert redact(document) == '{"key": "***"}'
        assert may_hold_secret(document)


def test_may_hold_secret_is_false_only_for_text_redaction_leaves_alone(monkeypatch):
    key = f"sk-{_marker()}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    clean = "job 41 diag.noop completed in 0.000s"
    assert not may_hold_secret(clean) and redact(clean) == clean
    for text in ("postgresql://u:pw@h/d", "password=x", f"using {key}"):
        assert may_hold_secret(text)
        assert redact(text) != text


def test_short_values_are_not_treated_as_secrets(monkeypatch):
    monkeypatch.setenv("FAL_KEY", "abc")  # would mask ordinary words
    assert redact("abc abcdef") == "abc abcdef"


def test_hostile_text_is_redacted_in_linear_time():
    # Each of these took minutes with a backtracking pattern; the answers are what matters.
    many = "http://u:" * 20_000
    assert redact(many) == many
    letters = "a" * 200_000 + "://"
    assert redact(letters) == letters
    assert redact("x" * 100_000 + " http://u:pw@h") == "x" * 100_000 + " http://u:***@h"


def test_url_passwords_are_masked_whatever_the_scheme_looks_like():
    text = "POSTGRES://u:p1@h 9redis://:p2@h amqp+ssl://u:p3@h"
    assert redact(text) == "POSTGRES://u:***@h 9redis://:***@h amqp+ssl://u:***@h"
