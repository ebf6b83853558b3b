"""fal.ai layer and image fetching: the plugin's own client for fal's queue protocol against a
local queue stand-in."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from standins import closed_port_url
from standins.fal_server import PNG_BYTES, FalStandIn, Reply, fal_stand_in

from jobrunner_cineqo._images.fal import (
    ATTEMPTS,
    DEFAULT_QUEUE_URL,
    FalConfigError,
    FalImages,
    FalNsfwError,
    FalPermanentError,
    FalRateLimited,
    FalRequest,
    FalRequestNotFound,
    FalRetryableError,
    QueueStatus,
    classify_error,
)
from jobrunner_cineqo._images.fetch import (
    ImageFetchError,
    ImageRejected,
    decode_data_uri,
    extension_for,
    fetch_image,
    image_key,
    parse_image_result,
    sniff_image_type,
)
from jobrunner_cineqo._storage import LocalStorage

KEY = "fal-key-id:fal-key-secret-0123456789"
APP = "fal-ai/flux/dev"
ARGS = {"prompt": "孙悟空, portrait", "num_images": 2, "seed": 7}


class Sleeps:
    """An injected sleep that records intervals instead of waiting."""

    def __init__(self) -> None:
        self.intervals: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.intervals.append(seconds)


@pytest.fixture
async def fal(fal_server: FalStandIn) -> AsyncIterator[FalImages]:
    async with FalImages.open(key=KEY, queue_url=fal_server.url) as client:
        client.sleep = Sleeps()  # in-place retries record their waits instead of sleeping
        yield client


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def waits(fal: FalImages) -> list[float]:
    assert isinstance(fal.sleep, Sleeps)
    return fal.sleep.intervals


# Queue ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_submit_follow_result(fal: FalImages, fal_server: FalStandIn) -> None:
    fal_server.script.queued_polls = 2
    fal_server.script.progress_polls = 2
    reports: list[QueueStatus] = []
    sleeps = Sleeps()

    async def on_progress(status: QueueStatus) -> None:
        reports.append(status)

    request = await fal.submit(APP, ARGS)
    final = await fal.follow(request, on_progress=on_progress, interval=0.5, sleep=sleeps)
    result = await fal.result(request)

    assert reports == [
        QueueStatus(state="queued", position=1),
        QueueStatus(state="queued", position=0),
        QueueStatus(state="in_progress", logs=("step 1/2",)),
        QueueStatus(state="in_progress", logs=("step 2/2",)),
        QueueStatus(state="completed"),
    ]
    assert final == QueueStatus(state="completed")
    assert sleeps.intervals == [0.5] * 4
    assert result["seed"] == 7
    assert result["prompt"] == ARGS["prompt"]
    request_id = request.request_id
    assert [image["url"] for image in result["images"]] == [
        f"{fal_server.url}/images/{request_id}/0.png",
        f"{fal_server.url}/images/{request_id}/1.png",
    ]
    [submission] = fal_server.submissions
    assert submission.path == "/" + APP
    assert submission.json() == ARGS
    assert submission.headers["user-agent"].startswith("jobrunner-cineqo/")
    # Polls go to the URLs the submission returned (the app's path is not in them), with logs.
    polls = fal_server.requests_where("GET", suffix="/status")
    assert {r.path for r in polls} == {f"/fal-ai/flux/requests/{request_id}/status"}
    assert all(r.query == {"logs": ["1"]} for r in polls)
    assert {r.headers["authorization"] for r in fal_server.requests} == {f"Key {KEY}"}
    assert waits(fal) == []


@pytest.mark.anyio
async def test_status_reports_each_state(fal: FalImages, fal_server: FalStandIn) -> None:
    request = await fal.submit(APP, ARGS)
    assert await fal.status(request) == QueueStatus(state="queued", position=0)
    assert await fal.status(request, with_logs=True) == QueueStatus(
        state="in_progress", logs=("step 1/1",)
    )
    assert await fal.status(request) == QueueStatus(state="completed")


@pytest.mark.anyio
async def test_follow_gives_up_after_max_polls(fal: FalImages, fal_server: FalStandIn) -> None:
    fal_server.script.queued_polls = 10
    request = await fal.submit(APP, ARGS)
    with pytest.raises(FalRetryableError, match="still queued after 3 polls") as caught:
        await fal.follow(request, max_polls=3, sleep=Sleeps())
    assert caught.value.request_id == request.request_id


@pytest.mark.anyio
async def test_run_saves_the_id_and_a_retry_resumes_it(
    fal: FalImages, fal_server: FalStandIn
) -> None:
    saved: list[str] = []

    async def on_submitted(request_id: str) -> None:
        saved.append(request_id)

    fal_server.script.result_replies = [Reply(status=503, body={"detail": "runner restarting"})]
    with pytest.raises(FalRetryableError, match="HTTP 503: runner restarting"):
        await fal.run(APP, ARGS, on_submitted=on_submitted, sleep=Sleeps())
    assert len(saved) == 1

    result = await fal.run(
        APP, ARGS, request_id=saved[0], on_submitted=on_submitted, sleep=Sleeps()
    )
    assert len(result["images"]) == 2
    assert len(fal_server.submissions) == 1  # the paid-for request was resumed, not resubmitted
    assert len(saved) == 1


@pytest.mark.anyio
async def test_run_resubmits_an_unknown_request(fal: FalImages, fal_server: FalStandIn) -> None:
    saved: list[str] = []

    async def on_submitted(request_id: str) -> None:
        saved.append(request_id)

    result = await fal.run(
        APP, ARGS, request_id="req-expired", on_submitted=on_submitted, sleep=Sleeps()
    )
    assert saved == ["req-0001"]
    assert len(result["images"]) == 2
    with pytest.raises(FalRequestNotFound, match="HTTP 404"):
        await fal.status(fal.request(APP, "req-expired"))


@pytest.mark.anyio
async def test_cancel(fal: FalImages, fal_server: FalStandIn) -> None:
    request = await fal.submit(APP, ARGS)
    await fal.cancel(request)
    assert fal_server.queue[request.request_id].cancelled
    assert fal_server.requests_where("PUT", suffix=f"/requests/{request.request_id}/cancel")


def test_resumed_requests_use_fals_documented_urls() -> None:
    fal = FalImages(http=httpx.AsyncClient(), queue_url="https://queue.test")
    assert fal.request("fal-ai/flux/dev", "r1") == FalRequest(
        request_id="r1",
        status_url="https://queue.test/fal-ai/flux/requests/r1/status",
        response_url="https://queue.test/fal-ai/flux/requests/r1",
        cancel_url="https://queue.test/fal-ai/flux/requests/r1/cancel",
    )
    assert fal.request("workflows/me/flow/x", "r/2").status_url == (
        "https://queue.test/workflows/me/flow/requests/r%2F2/status"
    )
    for app in ("workflows/me", "flux", "fal-ai/../admin"):
        with pytest.raises(FalConfigError, match="invalid fal app id"):
            fal.request(app, "r1")
    with pytest.raises(FalConfigError, match="request id"):
        fal.request(APP, "")


@pytest.mark.anyio
async def test_urls_on_another_host_are_not_followed(
    fal: FalImages, fal_server: FalStandIn
) -> None:
    """The key goes only to the configured queue, whatever a submission answers."""
    with fal_stand_in() as elsewhere:
        base = f"{elsewhere.url}/fal-ai/flux/requests/req-0001"
        fal_server.script.submit_replies = [
            Reply(
                status=200,
                body={
                    "request_id": "req-0001",
                    "status_url": f"{base}/status",
                    "response_url": base,
                    "cancel_url": f"{base}/cancel",
                },
            )
        ]
        fal_server.submit(APP, ARGS)  # the request the scripted answer names
        request = await fal.submit(APP, ARGS)
        assert request == fal.request(APP, "req-0001")
        assert (await fal.status(request)).state == "queued"
        assert elsewhere.requests == []


# Errors ---------------------------------------------------------------------------------------

VALIDATION = {
    "detail": [
        {"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"},
        {"loc": ["body", "num_images"], "msg": "must be <= 4", "type": "value_error"},
    ]
}


@pytest.mark.anyio
async def test_validation_error_at_submit_is_permanent(
    fal: FalImages, fal_server: FalStandIn
) -> None:
    fal_server.script.submit_replies = [Reply(status=422, body=VALIDATION)]
    with pytest.raises(FalPermanentError) as caught:
        await fal.submit(APP, {"num_images": 9})
    assert str(caught.value) == (
        "fal submission failed with HTTP 422: prompt: field required; num_images: must be <= 4"
    )
    assert caught.value.status_code == 422
    assert len(fal_server.submissions) == 1  # not retried


@pytest.mark.anyio
async def test_failed_request_is_permanent(fal: FalImages, fal_server: FalStandIn) -> None:
    fal_server.script.fail_with = Reply(status=422, body={"detail": "Image size is too large"})
    with pytest.raises(FalPermanentError, match="HTTP 422: Image size is too large") as caught:
        await fal.run(APP, ARGS, sleep=Sleeps())
    assert caught.value.request_id == "req-0001"
    assert not isinstance(caught.value, FalRequestNotFound)


@pytest.mark.anyio
async def test_busy_answers_are_retried_in_place_briefly(
    fal: FalImages, fal_server: FalStandIn
) -> None:
    fal_server.script.submit_replies = [
        Reply(status=408, body={"detail": "Request timeout"}),
        Reply(status=409, body={"detail": "Conflict"}),
    ]
    request = await fal.submit(APP, ARGS)
    assert request.request_id == "req-0001"
    assert len(fal_server.submissions) == 3
    assert len(waits(fal)) == 2 and all(0 < w <= 1 for w in waits(fal))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({}, None), ({"Retry-After": "60"}, 60.0), ({"Retry-After": "0.5"}, 0.5)],
)
async def test_a_rate_limit_is_never_retried_in_place(
    fal: FalImages, fal_server: FalStandIn, headers: dict[str, str], seconds: float | None
) -> None:
    # The job pauses its type on every worker instead: one worker asking again would not.
    fal_server.script.submit_replies = [
        Reply(status=429, body={"detail": "Too many requests"}, headers=headers)
    ]
    with pytest.raises(FalRateLimited, match="HTTP 429: Too many requests") as caught:
        await fal.submit(APP, ARGS)
    assert (caught.value.status_code, caught.value.retry_after) == (429, seconds)
    assert len(fal_server.submissions) == 1
    assert waits(fal) == []


@pytest.mark.anyio
async def test_a_gateway_error_page_is_retried_in_place(
    fal: FalImages, fal_server: FalStandIn
) -> None:
    request = await fal.submit(APP, ARGS)
    page = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    fal_server.script.status_replies = [Reply(status=502, body=page)]
    assert (await fal.status(request)).state == "queued"
    assert len(fal_server.requests_where("GET", suffix="/status")) == 2


@pytest.mark.anyio
async def test_server_error_is_retryable_then_succeeds(
    fal: FalImages, fal_server: FalStandIn
) -> None:
    fal_server.script.status_replies = [
        Reply(status=503, body={"detail": "overloaded"}, headers={"Retry-After": "7"})
    ]
    request = await fal.submit(APP, ARGS)
    with pytest.raises(FalRetryableError, match="HTTP 503: overloaded") as caught:
        await fal.follow(request, sleep=Sleeps())
    assert (caught.value.status_code, caught.value.retry_after) == (503, 7.0)
    assert (await fal.follow(request, sleep=Sleeps())).state == "completed"


@pytest.mark.anyio
async def test_an_unreachable_queue_is_retried_then_retryable() -> None:
    async with FalImages.open(key=KEY, queue_url=closed_port_url()) as fal:
        fal.sleep = Sleeps()
        with pytest.raises(FalRetryableError, match="could not reach fal.ai") as caught:
            await fal.submit(APP, ARGS)
        assert len(waits(fal)) == ATTEMPTS - 1  # a refused connection was never sent
        assert caught.value.__cause__ is None
        assert KEY not in "".join(traceback.format_exception(caught.value))


@pytest.mark.anyio
async def test_malformed_answers_are_retryable(fal: FalImages, fal_server: FalStandIn) -> None:
    fal_server.script.submit_replies = [Reply(status=200, body=["not", "an", "object"])]
    with pytest.raises(FalRetryableError, match="without a JSON object"):
        await fal.submit(APP, ARGS)
    fal_server.script.submit_replies = [Reply(status=200, body={"no": "id"})]
    with pytest.raises(FalRetryableError, match="without a request_id"):
        await fal.submit(APP, ARGS)
    request = await fal.submit(APP, ARGS)
    fal_server.script.status_replies = [Reply(status=200, body={"status": "EXPLODED"})]
    with pytest.raises(FalRetryableError, match="unknown status 'EXPLODED'"):
        await fal.status(request)


@pytest.mark.anyio
async def test_the_key_never_shows(fal: FalImages, fal_server: FalStandIn) -> None:
    fal_server.script.submit_replies = [
        Reply(status=401, body={"detail": f"Invalid key {KEY} for this app"})
    ]
    with pytest.raises(FalPermanentError) as caught:
        await fal.submit(APP, ARGS)
    assert "Invalid key *** for this app" in str(caught.value)
    assert KEY not in "".join(traceback.format_exception(caught.value))
    assert caught.value.__cause__ is None

    secret_half = KEY.partition(":")[2]
    fal_server.script.submit_replies = [Reply(status=403, body={"detail": f"bad {secret_half}"})]
    with pytest.raises(FalPermanentError, match=re.escape("HTTP 403: bad ***")):
        await fal.submit(APP, ARGS)
    assert KEY not in repr(fal)
    assert KEY not in repr(fal.http)
    assert KEY not in fal.describe()


@pytest.mark.anyio
async def test_transport_errors_and_timeouts_are_retryable(http: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ConnectError) as refused:
        await http.get(closed_port_url())
    error = classify_error(refused.value, request_id="req-9")
    assert isinstance(error, FalRetryableError)
    assert str(error).startswith("fal request req-9 could not reach fal.ai (ConnectError")
    assert isinstance(classify_error(httpx.ReadTimeout("slow")), FalRetryableError)
    assert isinstance(classify_error(TimeoutError()), FalRetryableError)
    assert isinstance(classify_error(KeyError("request_id")), FalRetryableError)


def test_http_status_classification() -> None:
    def http_error(status: int) -> httpx.HTTPStatusError:
        request = httpx.Request("GET", "https://queue.test/x")
        response = httpx.Response(status, json={"detail": "x"}, request=request)
        return httpx.HTTPStatusError("x", request=request, response=response)

    kinds = {status: type(classify_error(http_error(status))) for status in (400, 403, 422)}
    assert kinds == dict.fromkeys((400, 403, 422), FalPermanentError)
    for status in (408, 409, 425, 429, 500, 502, 504):
        assert isinstance(classify_error(http_error(status)), FalRetryableError)
    assert [isinstance(classify_error(http_error(s)), FalRateLimited) for s in (429, 503)] == [
        True,
        False,
    ]
    assert type(classify_error(http_error(404))) is FalPermanentError
    assert type(classify_error(http_error(404), request_id="r")) is FalRequestNotFound
    assert str(classify_error(http_error(422))) == "fal submission failed with HTTP 422: x"


@pytest.mark.anyio
async def test_configuration(fal_server: FalStandIn) -> None:
    with pytest.raises(FalConfigError, match="FAL_KEY is not set"):
        FalImages.from_env({"FAL_KEY": " "})
    with pytest.raises(FalConfigError, match="FAL_QUEUE_URL must be"):
        async with FalImages.from_env({"FAL_KEY": KEY, "FAL_QUEUE_URL": "queue.fal.run"}):
            pass
    env = {"FAL_KEY_ID": "id", "FAL_KEY_SECRET": "secret", "FAL_QUEUE_URL": fal_server.url + "/"}
    async with FalImages.from_env(env) as fal:
        assert fal.describe() == f"fal.ai queue at {fal_server.url}"
        await fal.submit(APP, ARGS)
        with pytest.raises(FalConfigError, match="invalid fal app id"):
            await fal.submit("flux", ARGS)
        with pytest.raises(FalConfigError, match="invalid fal app id"):
            fal.request("fal-ai/../admin", "req-0001")
    assert fal_server.submissions[0].headers["authorization"] == "Key id:secret"
    async with FalImages.from_env({"FAL_KEY": KEY}) as fal:
        assert fal.queue_url == DEFAULT_QUEUE_URL


@pytest.mark.anyio
async def test_an_injected_client_is_used_and_its_key_hidden(fal_server: FalStandIn) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Key {KEY}"}) as http:
        injected = FalImages(http=http, queue_url=fal_server.url)
        fal_server.script.submit_replies = [Reply(status=401, body={"detail": f"bad {KEY}"})]
        with pytest.raises(FalPermanentError, match=re.escape("HTTP 401: bad ***")):
            await injected.submit(APP, ARGS)
        assert (await injected.submit(APP, ARGS)).request_id == "req-0001"
    assert KEY not in repr(injected)


# Results --------------------------------------------------------------------------------------


def flux(*flags: bool) -> dict[str, object]:
    images = [{"url": f"https://cdn.test/{i}.png", "width": 8, "height": 8} for i in range(3)]
    return {"images": images, "seed": 3, "has_nsfw_concepts": list(flags), "prompt": "p"}


def test_parse_image_result() -> None:
    result = parse_image_result(flux(False, False, False), request_id="r1")
    assert [image.index for image in result.images] == [0, 1, 2]
    assert result.images[0].url == "https://cdn.test/0.png"
    assert (result.images[0].width, result.images[0].content_type) == (8, None)
    assert (result.seed, result.prompt) == (3, "p")


def test_nsfw_results_are_permanent() -> None:
    with pytest.raises(FalNsfwError, match=re.escape("flagged images [1]")) as caught:
        parse_image_result(flux(False, True, False), request_id="r1")
    assert isinstance(caught.value, FalPermanentError)
    assert caught.value.request_id == "r1"
    kept = parse_image_result(flux(False, True, False), drop_nsfw=True)
    assert [image.index for image in kept.images] == [0, 2]
    with pytest.raises(FalNsfwError):
        parse_image_result(flux(True, True, True), drop_nsfw=True)


@pytest.mark.parametrize(
    "data",
    [{}, {"images": []}, {"images": "x"}, {"images": [{"width": 1}]}, {"images": [{"url": 3}]}],
)
def test_malformed_results_are_permanent(data: dict[str, object]) -> None:
    with pytest.raises(FalPermanentError, match="fal result"):
        parse_image_result(data)


@pytest.mark.anyio
async def test_nsfw_result_end_to_end(fal: FalImages, fal_server: FalStandIn) -> None:
    fal_server.script.nsfw = [True, False]
    data = await fal.run(APP, ARGS, sleep=Sleeps())
    with pytest.raises(FalNsfwError):
        parse_image_result(data)


# Images ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_fetch_image_downloads_without_the_fal_key(
    fal: FalImages, fal_server: FalStandIn, http: httpx.AsyncClient
) -> None:
    result = parse_image_result(await fal.run(APP, ARGS, sleep=Sleeps()))
    data, content_type = await fetch_image(result.images[1].url, http_client=http, max_bytes=1024)
    assert (data, content_type) == (PNG_BYTES, "image/png")
    [download] = fal_server.requests_where("GET", suffix="/1.png")
    assert "authorization" not in download.headers


@pytest.mark.anyio
async def test_download_failure_then_success(
    fal_server: FalStandIn, http: httpx.AsyncClient
) -> None:
    url = f"{fal_server.url}/images/req-0001/0.png"
    fal_server.script.image_replies = [Reply(status=502, body={"detail": "bad gateway"})]
    with pytest.raises(ImageFetchError, match="HTTP 502"):
        await fetch_image(url, http_client=http)
    assert await fetch_image(url, http_client=http) == (PNG_BYTES, "image/png")


@pytest.mark.anyio
async def test_unreachable_image_host_is_retryable(http: httpx.AsyncClient) -> None:
    with pytest.raises(ImageFetchError, match="ConnectError"):
        await fetch_image(closed_port_url() + "/a.png", http_client=http)


@pytest.mark.anyio
async def test_missing_or_oversized_images_are_permanent(
    fal_server: FalStandIn, http: httpx.AsyncClient
) -> None:
    url = f"{fal_server.url}/images/req-0001/0.png"
    fal_server.script.image_replies = [Reply(status=404, body={"detail": "gone"})]
    with pytest.raises(ImageRejected, match="HTTP 404"):
        await fetch_image(url, http_client=http)
    with pytest.raises(ImageRejected, match="larger than 10 bytes"):
        await fetch_image(url, http_client=http, max_bytes=10)
    fal_server.script.image_replies = [Reply(status=200, body={"not": "an image"})]
    with pytest.raises(ImageRejected, match="not a PNG, JPEG or WebP"):
        await fetch_image(url, http_client=http)


@pytest.mark.anyio
async def test_data_uri_results(
    fal: FalImages, fal_server: FalStandIn, http: httpx.AsyncClient
) -> None:
    fal_server.script.data_uri_images = True
    result = parse_image_result(await fal.run(APP, ARGS, sleep=Sleeps()))
    assert result.images[0].url.startswith("data:image/png;base64,")
    assert await fetch_image(result.images[0].url, http_client=http) == (PNG_BYTES, "image/png")
    assert not fal_server.requests_where("GET", suffix=".png")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("data:text/plain,hello", "not a PNG"),
        ("data:image/png;base64,%%%notbase64", "invalid base64"),
        ("data:image/png;base64" + base64.b64encode(PNG_BYTES).decode(), "malformed"),
        ("data:image/png;base64," + base64.b64encode(b"\0" * 64).decode(), "larger than 32"),
        ("file:///etc/passwd", "unsupported image URL"),
        ("ftp://example.test/a.png", "unsupported image URL"),
    ],
)
async def test_unusable_image_urls_are_permanent(
    http: httpx.AsyncClient, url: str, message: str
) -> None:
    with pytest.raises(ImageRejected, match=message):
        await fetch_image(url, http_client=http, max_bytes=32 if "AAAA" in url else 1024)


def test_data_uri_decoding() -> None:
    encoded = base64.b64encode(PNG_BYTES).decode()
    spaced = " ".join(encoded[i : i + 20] for i in range(0, len(encoded), 20))
    assert decode_data_uri(f"data:image/png;base64,{spaced}") == PNG_BYTES
    assert decode_data_uri("data:,a%20b") == b"a b"


def test_sniffing_and_extensions() -> None:
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    webp = b"RIFF\x24\x00\x00\x00WEBPVP8 "
    assert [sniff_image_type(d) for d in (PNG_BYTES, jpeg, webp)] == [
        "image/png",
        "image/jpeg",
        "image/webp",
    ]
    assert sniff_image_type(b"GIF89a") is None
    assert sniff_image_type(b"RIFF\x24\x00\x00\x00WAVE") is None
    assert [extension_for(t) for t in ("image/png", "image/jpeg", "image/webp")] == [
        "png",
        "jpg",
        "webp",
    ]
    with pytest.raises(ImageRejected):
        extension_for("image/gif")


def test_image_key() -> None:
    assert image_key("images/characters", 42, 0, "png") == "images/characters/42/0.png"
    assert image_key("/图片/角色/", "job-7", 3, ".JPG") == "图片/角色/job-7/3.jpg"
    assert image_key("", 1, 0, "webp") == "1/0.webp"
    for bad in (("p", "a/b", 0, "png"), ("p", "", 0, "png"), ("p", 1, -1, "png")):
        with pytest.raises(ValueError, match=r"job id|index"):
            image_key(*bad)
    with pytest.raises(ValueError, match="extension"):
        image_key("p", 1, 0, "gif")
    with pytest.raises(ValueError, match="unsafe storage key"):
        image_key("../up", 1, 0, "png")


def test_importing_the_layers_imports_no_heavy_client() -> None:
    code = (
        "import sys, jobrunner_cineqo._images.fal, jobrunner_cineqo._images.fetch\n"
        "import jobrunner_cineqo._storage\n"
        "heavy = ('httpx', 'aioboto3', 'botocore')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# The pieces together, as an image handler would use them --------------------------------------


@pytest.mark.anyio
async def test_generate_fetch_and_store(
    fal: FalImages, fal_server: FalStandIn, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path, public_base_url="https://media.test")
    fal_server.script.image_replies = [Reply(status=503, body={"detail": "busy"})]
    result = parse_image_result(await fal.run(APP, ARGS, sleep=Sleeps()))
    stored = []
    for image in result.images:
        for _attempt in range(2):  # the runner's retry, in miniature
            try:
                data, content_type = await fetch_image(image.url, http_client=http)
                break
            except ImageFetchError:
                continue
        key = image_key("images/characters", 42, image.index, extension_for(content_type))
        stored.append(await storage.put(key, data, content_type=content_type))
    assert [s.url for s in stored] == [
        "https://media.test/images/characters/42/0.png",
        "https://media.test/images/characters/42/1.png",
    ]
    assert (tmp_path / "images/characters/42/1.png").read_bytes() == PNG_BYTES
