"""`jobrunner doctor` checks the plugin's credentials with one cheap authenticated call."""

from __future__ import annotations

import json
import os
import subprocess

from jr_support import JOBRUNNER


def doctor(env: dict[str, str]) -> dict[str, dict[str, str]]:
    out = subprocess.run(
        [JOBRUNNER, "doctor", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    return {c["name"]: c for c in json.loads(out.stdout)}


def test_doctor_probes_openai_and_storage(pg_url, pg_schema, openai_standin, tmp_path):
    env = dict(
        os.environ,
        DATABASE_URL=pg_url,
        JOBRUNNER_SCHEMA=pg_schema,
        CINEQO_DATA_DIR=str(tmp_path),
        OPENAI_API_KEY="sk-doctor-secret-1234",
        OPENAI_BASE_URL=openai_standin.base_url,
    )
    env.pop("FAL_KEY", None)
    checks = doctor(env)
    assert checks["cineqo openai"]["status"] == "ok"
    assert checks["cineqo storage"]["status"] == "ok"
    assert checks["plugin cineqo"]["status"] == "warn"
    assert "FAL_KEY is not set" in checks["plugin cineqo"]["message"]

    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # nothing listens there
    broken = doctor(env)
    assert broken["cineqo openai"]["status"] == "fail"
    assert "sk-doctor-secret-1234" not in json.dumps(broken)
