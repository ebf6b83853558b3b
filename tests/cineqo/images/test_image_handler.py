"""`image.generate` on a real worker: the plugin's fal client against the queue stand-in, images
stored in R2 (moto, through the real aioboto3) or a local directory."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import pytest
from standins.fal_server import PNG_BYTES, Reply

pytestmark = pytest.mark.anyio

PROMPT = "A monkey king in golden armour, ink painting"


def accepted(cineqo: Any) -> int:
    """Requests the fal queue accepted (and would charge for)."""
    return len(cineqo.fal.queue)


async def test_images_go_to_r2_with_type_and_cache_headers(
    cineqo: Any, r2_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    s3 = cineqo.use_r2(r2_env)
    # INFO for libraries (the worker's default level): botocore's DEBUG lines print the R2
    # access key id inside the signed Authorization header. All of jobrunner's own lines.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="jobrunner")
    payload = {"prompt": PROMPT, "num_images": 2, "seed": 7, "image_size": "portrait_4_3"}
    job = await cineqo.run("image.generate", {**payload, "metadata": {"character": "孙悟空"}})

    assert (job.status, job.attempts, job.progress) == ("completed", 1, 1.0), job.error
    result = job.result
    assert (result["request_id"], result["model"], result["seed"]) == (
        "req-0001",
        "fal-ai/flux/dev",
        7,
    )
    assert result["metadata"] == {"character": "孙悟空"}
    assert [image["key"] for image in result["images"]] == [
        f"images/{job.id}/0.png",
        f"images/{job.id}/1.png",
    ]
    for image in result["images"]:
        assert image["url"] == f"https://media.example.test/{image['key']}"
        assert (image["width"], image["height"], image["seed"]) == (2, 2, 7)
        assert image["content_type"] == "image/png"
        stored = s3.get_object(Bucket=r2_env["R2_BUCKET_NAME"], Key=image["key"])
        assert stored["Body"].read() == PNG_BYTES
        assert stored["ContentType"] == "image/png"
        assert stored["CacheControl"] == "public, max-age=31536000, immutable"

    [submission] = cineqo.fal.submissions
    assert submission.path == "/fal-ai/flux/dev"
    assert submission.json() == {**payload, "prompt": PROMPT}
    assert submission.headers["authorization"] == f"Key {cineqo.env['FAL_KEY']}"
    downloads = cineqo.fal.requests_where("GET", suffix=".png")
    assert len(downloads) == 2
    assert all("authorization" not in d.headers for d in downloads)  # the CDN never sees it
    assert cineqo.row(job.id)["checkpoint"] == {
        "fal_request_id": "req-0001",
        "usage_recorded_for": "req-0001",  # its images are counted once, however often fetched
    }
    cineqo.assert_no_secrets(caplog.text)


async def test_a_killed_worker_resumes_the_paid_request(cineqo: Any) -> None:
    cineqo.fal.script.queued_polls = 10**6  # stays in the queue until the worker is dead
    async with cineqo.runner(worker=False) as runner:
        job_id = await runner.enqueue("image.generate", {"prompt": PROMPT})

    _, stderr = cineqo.kill_worker_when(lambda: bool(cineqo.row(job_id)["checkpoint"]))
    assert cineqo.row(job_id)["checkpoint"] == {"fal_request_id": "req-0001"}
    cineqo.fal.script.queued_polls = 1  # the request is done at fal.ai by now

    async with cineqo.runner() as runner:
        await runner.backend.job_rescue_expired()
        job = await runner.wait_for(job_id, timeout=30)

    assert (job.status, job.attempts) == ("completed", 2), job.error
    assert job.result["request_id"] == "req-0001"
    assert len(cineqo.fal.submissions) == accepted(cineqo) == 1
    key = f"images/{job_id}/0.png"
    assert (cineqo.data_dir / key).read_bytes() == PNG_BYTES
    assert job.result["images"][0]["key"] == key
    cineqo.assert_no_secrets(stderr)


async def test_permanent_fal_failures_fail_at_once_with_fals_message(cineqo: Any) -> None:
    invalid = {"detail": [{"loc": ["body", "image_size"], "msg": "unknown size 'huge'"}]}
    cineqo.fal.script.submit_replies = [Reply(status=422, body=invalid)]
    [rejected] = await cineqo.run_many([("image.generate", {"prompt": PROMPT})])
    cineqo.fal.script.nsfw = [True]
    nsfw, bad_payload, bad_model = await cineqo.run_many(
        [
            ("image.generate", {"prompt": PROMPT}),
            ("image.generate", {"prompt": PROMPT, "num_images": 5}),
            ("image.generate", {"prompt": PROMPT, "model": "no-slash"}),
        ]
    )

    for job in (rejected, nsfw, bad_payload, bad_model):
        assert (job.status, job.attempts) == ("failed", 1), job.error
    assert rejected.error == (
        "PermanentFailure: fal submission failed with HTTP 422: image_size: unknown size 'huge'"
    )
    assert nsfw.error.startswith("PermanentFailure: the safety checker flagged images [0]")
    assert "num_images: Input should be less than or equal to 4 (got 5)" in bad_payload.error
    assert bad_model.error.startswith("PayloadError: invalid fal app id 'no-slash'")
    assert not (cineqo.data_dir / "images").exists()
    cineqo.assert_no_secrets()


async def test_busy_fal_is_retried_without_paying_twice(
    cineqo: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A 429 pauses the type and hands the job back (its attempt refunded); fal's own 503 with
    # Retry-After reaches the job's retry policy.
    cineqo.fal.script.submit_replies = [
        Reply(status=429, body={"detail": "Too many requests"}, headers={"Retry-After": "1"}),
        Reply(status=503, body={"detail": "overloaded"}, headers={"Retry-After": "0"}),
    ]
    job = await cineqo.run("image.generate", {"prompt": PROMPT, "output_format": "png"})

    assert (job.status, job.attempts) == ("completed", 2), job.error  # the 429 used none
    assert len(cineqo.fal.submissions) == 3
    assert accepted(cineqo) == 1
    [retried] = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert "Retry: fal submission failed with HTTP 503: overloaded" in retried


async def test_a_failed_download_is_retried_on_the_same_request(cineqo: Any) -> None:
    cineqo.fal.script.image_replies = [Reply(status=502, body={"detail": "bad gateway"})]
    job = await cineqo.run("image.generate", {"prompt": PROMPT})

    assert (job.status, job.attempts) == ("completed", 2), job.error
    assert accepted(cineqo) == len(cineqo.fal.submissions) == 1
    assert len(cineqo.fal.requests_where("GET", suffix=".png")) == 2
    assert (cineqo.data_dir / job.result["images"][0]["key"]).read_bytes() == PNG_BYTES


async def test_a_failed_upload_is_retried_until_the_bucket_exists(
    cineqo: Any, r2_env: dict[str, str], moto_server: Any
) -> None:
    bucket = r2_env["R2_BUCKET_NAME"] + "-later"
    s3 = cineqo.use_r2({**r2_env, "R2_BUCKET_NAME": bucket})
    cineqo.env["CINEQO_RETRY_DELAY"] = "0.5"  # time for the test to create the bucket
    async with cineqo.runner() as runner:
        job_id = await runner.enqueue("image.generate", {"prompt": PROMPT})
        await cineqo.wait_until(lambda: cineqo.row(job_id)["error"] is not None)
        moto_server.create_bucket(bucket)
        job = await runner.wait_for(job_id, timeout=30)

    assert job.status == "completed", job.error
    assert job.attempts >= 2
    assert accepted(cineqo) == len(cineqo.fal.submissions) == 1
    stored = s3.get_object(Bucket=bucket, Key=job.result["images"][0]["key"])
    assert stored["Body"].read() == PNG_BYTES
    cineqo.assert_no_secrets()


async def test_non_ascii_key_prefix_and_data_uri_results(
    cineqo: Any, r2_env: dict[str, str]
) -> None:
    s3 = cineqo.use_r2(r2_env)
    cineqo.fal.script.data_uri_images = True
    job = await cineqo.run("image.generate", {"prompt": PROMPT, "key_prefix": "/角色/孙悟空/"})

    assert job.status == "completed", job.error
    [image] = job.result["images"]
    assert image["key"] == f"角色/孙悟空/{job.id}/0.png"
    assert image["url"] == "https://media.example.test/" + quote(image["key"])
    assert "%E8%A7%92" in image["url"]  # 角, escaped
    stored = s3.get_object(Bucket=r2_env["R2_BUCKET_NAME"], Key=image["key"])
    assert stored["Body"].read() == PNG_BYTES
    assert cineqo.fal.requests_where("GET", suffix=".png") == []


async def test_novel_id_is_a_folder_under_the_prefix_and_echoed(cineqo: Any) -> None:
    jobs = await cineqo.run_many(
        [
            ("image.generate", {"prompt": PROMPT, "novel_id": "西游记"}),
            ("image.generate", {"prompt": PROMPT, "novel_id": 7, "key_prefix": "portraits"}),
            ("image.generate", {"prompt": PROMPT}),
        ]
    )
    assert all(j.status == "completed" for j in jobs), [j.error for j in jobs]
    keys = [j.result["images"][0]["key"] for j in jobs]
    assert keys == [
        f"images/西游记/{jobs[0].id}/0.png",
        f"portraits/7/{jobs[1].id}/0.png",
        f"images/{jobs[2].id}/0.png",
    ]
    assert [j.result["novel_id"] for j in jobs] == ["西游记", "7", None]
    for key in keys:
        assert (cineqo.data_dir / key).read_bytes() == PNG_BYTES


def test_image_novel_id_is_checked() -> None:
    from jobrunner import PayloadError
    from jobrunner_cineqo import plugin

    payload = plugin.handlers["image.generate"].payload
    assert payload is not None

    def parse_image(data: dict[str, Any]) -> Any:
        return payload.validate(data, job_type="image.generate")

    assert parse_image({"prompt": "p", "novel_id": "xyj"}).folder("images") == "images/xyj"
    assert parse_image({"prompt": "p", "key_prefix": "a/b"}).folder("images") == "a/b"
    with pytest.raises(PayloadError, match="novel_id: .* without '/'"):
        parse_image({"prompt": "p", "novel_id": "a/b"})
    with pytest.raises(PayloadError, match="novel_id: .* longer than 255 bytes"):
        parse_image({"prompt": "p", "novel_id": "长" * 100})
