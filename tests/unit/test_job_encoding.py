"""Payload encoding: a bulk enqueue encodes its payloads together, and refuses exactly what a
single enqueue refuses."""

from __future__ import annotations

from typing import Any

import pytest

from jobrunner import NewJob, PayloadError
from jobrunner._job import encode_json, encode_json_array

LIMIT = 1 << 20
VALUES: list[Any] = [{}, {"a": 1}, "text", [1, 2.5], {"ü": "ß", "e": "€"}, None, True, "x\\u0000"]


def test_an_array_is_the_payloads_one_by_one():
    values = VALUES * 100  # several chunks
    one_by_one = [encode_json(v, what="payload", max_bytes=LIMIT) for v in values]
    assert encode_json_array(values, what="payload", max_bytes=LIMIT) == f"[{','.join(one_by_one)}]"
    assert encode_json_array([], what="payload", max_bytes=LIMIT) == "[]"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"x": float("nan")}, "Out of range float values are not JSON compliant"),
        ({"s": {1, 2}}, "payload is not JSON-serialisable: Object of type set"),
        ({"x": "a\x00b"}, "payload contains a NUL character"),
        ({"x": "\udcff"}, "payload contains invalid Unicode"),
        ({"x": "y" * 100}, "payload is 108 bytes, over the limit of 100 bytes"),
    ],
)
def test_an_array_refuses_what_one_payload_is_refused_for(bad, message):
    values = [{}] * 300 + [bad] + [{}] * 10  # the bad one in the second chunk
    with pytest.raises(PayloadError) as caught:
        encode_json_array(values, what="payload", max_bytes=100)
    assert message in str(caught.value)
    with pytest.raises(PayloadError) as alone:
        encode_json(bad, what="payload", max_bytes=100)
    assert str(alone.value) == str(caught.value)


def test_the_size_limit_is_per_payload_not_per_array():
    values = [{"x": "y" * 90}] * 1000  # 100 bytes each, 100 kB together
    text = encode_json_array(values, what="payload", max_bytes=100)
    assert text.count('"x"') == 1000


def test_a_cycle_is_refused():
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(PayloadError, match="not JSON-serialisable"):
        encode_json_array([cycle], what="payload", max_bytes=LIMIT)


def test_new_job_checks_every_text_field():
    for field in ("queue", "user_id"):
        with pytest.raises(PayloadError, match=f"{field} contains a NUL character"):
            NewJob(type="t", **{field: "a\x00"})
        with pytest.raises(PayloadError, match=f"{field} contains invalid Unicode"):
            NewJob(type="t", **{field: "\udcff"})
    with pytest.raises(PayloadError, match="type contains invalid Unicode"):
        NewJob(type="t\ud800")
    assert NewJob(type="é", queue="ü", user_id="ß").queue == "ü"
