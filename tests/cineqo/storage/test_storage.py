"""Storage: key safety, payload sources, local files, and R2 through aioboto3 against moto."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import aioboto3
import pytest
from aiobotocore.config import AioConfig
from standins import closed_port_url
from standins.s3 import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, MotoS3

from jobrunner_cineqo._storage import (
    KeySource,
    LocalSource,
    LocalStorage,
    ObjectNotFound,
    R2Config,
    R2Storage,
    Storage,
    StorageConfigError,
    StorageError,
    StorageKeyError,
    build_botocore_config,
    resolve_source,
    safe_key,
    storage_from_env,
)

SECRETS = (FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY)


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# Keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["novels/a.txt", "novels/三体/第一章.txt", "images/1/0.png", "a b/c:d.txt", "x", "~/notes"],
)
def test_safe_key_accepts_relative_keys(key: str) -> None:
    assert safe_key(key) == key


def test_safe_key_normalises_to_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "novels/café.txt")
    assert decomposed != "novels/café.txt"
    assert safe_key(decomposed) == "novels/café.txt"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../secret", "'..'"),
        ("novels/../../secret", "'..'"),
        ("./a", "'.'"),
        ("a//b", "empty path segments"),
        ("novels/", "empty path segments"),
        ("a\\b", "backslash"),
        ("..\\..\\windows", "backslash"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\x7fb", "control"),
        ("file:///etc/passwd", "URL"),
        ("http://example.test/a", "URL"),
        ("s3://bucket/key", "URL"),
        ("data:image/png;base64,AAAA", "URL"),
        ("C:/Windows/system.ini", "drive"),
        ("a/" + "长" * 86, "segment is longer"),
        ("a/" * 600, "longer than 1024"),
    ],
)
def test_safe_key_refuses_unsafe_keys(key: str, reason: str) -> None:
    with pytest.raises(StorageKeyError, match=reason):
        safe_key(key)


def test_key_errors_are_permanent_value_errors() -> None:
    assert issubclass(StorageKeyError, ValueError)
    assert issubclass(StorageError, RuntimeError)
    assert issubclass(ObjectNotFound, StorageError)
    assert issubclass(ObjectNotFound, LookupError)


# Payload sources ----------------------------------------------------------------------------


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """An allowed root holding 三体.txt, and a sibling directory outside it holding secret.txt."""
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "三体.txt").write_text("novel", encoding="utf-8")
    (outside / "secret.txt").write_text("secret", encoding="utf-8")
    return allowed, outside


def test_relative_sources_are_storage_keys(roots: tuple[Path, Path]) -> None:
    assert resolve_source("novels/三体.txt", allowed_roots=[roots[0]]) == KeySource(
        key="novels/三体.txt"
    )


def test_absolute_path_inside_a_root_is_local(roots: tuple[Path, Path]) -> None:
    allowed, _ = roots
    source = resolve_source(str(allowed / "三体.txt"), allowed_roots=[allowed])
    assert source == LocalSource(path=(allowed / "三体.txt").resolve())


def test_file_uri_inside_a_root_is_local(roots: tuple[Path, Path]) -> None:
    allowed, _ = roots
    uri = (allowed / "三体.txt").as_uri()  # percent-encodes the Chinese name
    assert "%" in uri
    assert resolve_source(uri, allowed_roots=[allowed]) == LocalSource(
        path=(allowed / "三体.txt").resolve()
    )
    localhost = "file://localhost" + uri.removeprefix("file://")
    assert isinstance(resolve_source(localhost, allowed_roots=[allowed]), LocalSource)


@pytest.mark.parametrize(
    "make_source",
    [
        lambda allowed, outside: str(outside / "secret.txt"),
        lambda allowed, outside: str(allowed / ".." / "outside" / "secret.txt"),
        lambda allowed, outside: (outside / "secret.txt").as_uri(),
        lambda allowed, outside: f"file://{allowed}/../outside/secret.txt",
        lambda allowed, outside: f"file://evil.example{outside}/secret.txt",
        lambda allowed, outside: "file:relative/secret.txt",
        lambda allowed, outside: "../outside/secret.txt",
        lambda allowed, outside: "http://example.test/novel.txt",
        lambda allowed, outside: "s3://bucket/novel.txt",
        lambda allowed, outside: f"{allowed}/三体.txt\x00.png",
        lambda allowed, outside: "/etc/passwd",
    ],
)
def test_sources_outside_the_roots_are_refused(roots: tuple[Path, Path], make_source) -> None:
    allowed, outside = roots
    with pytest.raises(StorageKeyError):
        resolve_source(make_source(allowed, outside), allowed_roots=[allowed])


def test_symlink_inside_a_root_cannot_lead_outside(roots: tuple[Path, Path]) -> None:
    allowed, outside = roots
    (allowed / "link").symlink_to(outside)
    with pytest.raises(StorageKeyError, match="outside the allowed"):
        resolve_source(str(allowed / "link" / "secret.txt"), allowed_roots=[allowed])


def test_a_symlinked_root_allows_its_target(tmp_path: Path, roots: tuple[Path, Path]) -> None:
    allowed, _ = roots
    alias = tmp_path / "alias"
    alias.symlink_to(allowed)
    source = resolve_source(str(allowed / "三体.txt"), allowed_roots=[alias])
    assert source == LocalSource(path=(allowed / "三体.txt").resolve())


def test_no_roots_means_no_local_paths(roots: tuple[Path, Path]) -> None:
    with pytest.raises(StorageKeyError):
        resolve_source(str(roots[0] / "三体.txt"), allowed_roots=[])


# Local storage -------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_local_round_trip(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data")
    assert isinstance(storage, Storage)
    stored = await storage.put("novels/三体/第一章.txt", "正文".encode(), content_type="text/plain")
    assert stored.key == "novels/三体/第一章.txt"
    assert stored.size == len("正文".encode())
    assert stored.content_type == "text/plain"
    assert stored.url is None
    assert (tmp_path / "data/novels/三体/第一章.txt").read_text(encoding="utf-8") == "正文"
    assert await storage.get("novels/三体/第一章.txt") == "正文".encode()
    assert await storage.exists("novels/三体/第一章.txt")
    assert not await storage.exists("novels/三体/第二章.txt")
    assert not await storage.exists("novels/三体")  # a directory is not an object


@pytest.mark.anyio
async def test_local_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put("images/1/0.png", b"old", content_type="image/png")
    await storage.put("images/1/0.png", b"new", content_type="image/png")
    assert await storage.get("images/1/0.png") == b"new"
    assert names(tmp_path / "images/1") == ["0.png"]
    assert oct((tmp_path / "images/1/0.png").stat().st_mode & 0o777) == oct(0o644)


@pytest.mark.anyio
async def test_local_missing_object(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(ObjectNotFound, match=re.escape("novels/none.txt")):
        await storage.get("novels/none.txt")


@pytest.mark.anyio
async def test_local_public_urls(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, public_base_url="https://files.example.test/media/")
    stored = await storage.put("images/三体 1.png", b"x", content_type="image/png")
    expected = "https://files.example.test/media/images/%E4%B8%89%E4%BD%93%201.png"
    assert stored.url == expected
    assert storage.public_url("images/三体 1.png") == expected


@pytest.mark.anyio
async def test_local_refuses_unsafe_keys(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data")
    for call in (
        storage.put("../escape.txt", b"x", content_type="text/plain"),
        storage.get("/etc/passwd"),
        storage.exists("a\\..\\b"),
    ):
        with pytest.raises(StorageKeyError):
            await call
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.anyio
async def test_local_symlink_inside_root_cannot_escape(tmp_path: Path) -> None:
    root, outside = tmp_path / "data", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (root / "link").symlink_to(outside)
    storage = LocalStorage(root)
    with pytest.raises(StorageKeyError, match="outside the storage root"):
        await storage.put("link/new.txt", b"x", content_type="text/plain")
    with pytest.raises(StorageKeyError, match="outside the storage root"):
        await storage.get("link/secret.txt")
    assert names(outside) == ["secret.txt"]


@pytest.mark.anyio
async def test_local_io_failure_then_success(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    (tmp_path / "novels").write_text("a file where a directory is needed")
    with pytest.raises(StorageError, match=re.escape("could not write 'novels/a.txt'")) as caught:
        await storage.put("novels/a.txt", b"x", content_type="text/plain")
    assert not isinstance(caught.value, ObjectNotFound)
    (tmp_path / "novels").unlink()
    await storage.put("novels/a.txt", b"x", content_type="text/plain")
    assert await storage.get("novels/a.txt") == b"x"


@pytest.mark.anyio
async def test_local_failed_replace_cleans_its_temp_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put("dir/inner.txt", b"x", content_type="text/plain")
    with pytest.raises(StorageError):
        await storage.put("dir", b"y", content_type="text/plain")  # 'dir' is a directory
    assert names(tmp_path) == ["dir"]


@pytest.mark.anyio
async def test_storage_from_env_defaults_to_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with storage_from_env({}) as storage:
        assert isinstance(storage, LocalStorage)
        assert storage.root == tmp_path / "jobrunner-data"
    env = {"CINEQO_DATA_DIR": str(tmp_path / "elsewhere"), "CINEQO_PUBLIC_BASE_URL": "http://h/"}
    async with storage_from_env(env) as storage:
        await storage.put("a.txt", b"x", content_type="text/plain")
        assert (tmp_path / "elsewhere/a.txt").read_bytes() == b"x"
        assert storage.public_url("a.txt") == "http://h/a.txt"
        assert str(tmp_path / "elsewhere") in storage.describe()


# R2 configuration ---------------------------------------------------------------------------

FULL_R2_ENV = {
    "R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
    "R2_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
    "R2_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
    "R2_BUCKET_NAME": "cineqo-media",
    "R2_PUBLIC_URL": "https://media.example.test",
}


def test_r2_config_from_env() -> None:
    config = R2Config.from_env(FULL_R2_ENV)
    assert config is not None
    assert (
        config.endpoint_url == "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
    )
    assert config.bucket == "cineqo-media"
    assert config.public_url == "https://media.example.test"
    assert_no_secrets(repr(config), config.describe())
    assert FULL_R2_ENV["R2_ACCOUNT_ID"] not in repr(config) + config.describe()


def test_redaction_hides_credentials_but_not_short_accidents() -> None:
    config = R2Config.from_env(FULL_R2_ENV)
    assert config is not None
    text = f"denied for {FAKE_ACCESS_KEY_ID} signed with {FAKE_SECRET_ACCESS_KEY}"
    assert config.redact(text) == "denied for *** signed with ***"
    short = R2Config.from_env(FULL_R2_ENV | {"R2_ACCESS_KEY_ID": "a"})
    assert short is not None
    assert short.redact("bucket a") == "bucket a"


def test_no_r2_variables_means_no_r2() -> None:
    assert R2Config.from_env({"PATH": "/usr/bin", "R2_BUCKET_NAME": "  "}) is None


def test_endpoint_override_replaces_the_account() -> None:
    env = {k: v for k, v in FULL_R2_ENV.items() if k != "R2_ACCOUNT_ID"}
    config = R2Config.from_env(env | {"R2_ENDPOINT_URL": "http://127.0.0.1:9000"})
    assert config is not None
    assert config.endpoint_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        (["R2_SECRET_ACCESS_KEY"], "R2_SECRET_ACCESS_KEY"),
        (["R2_ACCOUNT_ID", "R2_BUCKET_NAME"], "R2_ACCOUNT_ID, R2_BUCKET_NAME"),
        (["R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET_NAME", "R2_ACCOUNT_ID"], "R2_"),
    ],
)
def test_partial_r2_config_names_what_is_missing(missing: list[str], named: str) -> None:
    env = {k: ("" if k in missing else v) for k, v in FULL_R2_ENV.items()}
    with pytest.raises(StorageConfigError, match=f"missing {named}") as caught:
        R2Config.from_env(env)
    assert_no_secrets(str(caught.value))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"R2_PUBLIC_URL": "media.example.test"}, "R2_PUBLIC_URL must be an http"),
        ({"R2_ENDPOINT_URL": "ftp://host"}, "R2_ENDPOINT_URL must be an http"),
        ({"R2_ACCOUNT_ID": "evil.example/x"}, "R2_ACCOUNT_ID may hold only"),
    ],
)
def test_malformed_r2_config_is_refused(change: dict[str, str], message: str) -> None:
    with pytest.raises(StorageConfigError, match=message):
        R2Config.from_env(FULL_R2_ENV | change)


@pytest.mark.anyio
async def test_storage_from_env_refuses_partial_r2() -> None:
    with pytest.raises(StorageConfigError, match="missing R2_BUCKET_NAME"):
        async with storage_from_env(FULL_R2_ENV | {"R2_BUCKET_NAME": ""}):
            pass


def test_botocore_config_is_what_r2_needs() -> None:
    config = build_botocore_config()
    assert isinstance(config, AioConfig)
    assert config.signature_version == "s3v4"
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.retries == {"max_attempts": 3, "mode": "standard"}


# R2 against moto ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_r2_round_trip(r2_env: dict[str, str]) -> None:
    async with storage_from_env(r2_env) as storage:
        assert isinstance(storage, R2Storage)
        assert isinstance(storage, Storage)
        key = "images/三体/封面 1.png"
        stored = await storage.put(
            key, b"\x89PNG\r\n\x1a\n", content_type="image/png", cache_control="public, max-age=60"
        )
        expected_url = (
            "https://media.example.test/images/%E4%B8%89%E4%BD%93/%E5%B0%81%E9%9D%A2%201.png"
        )
        assert stored.url == expected_url == storage.public_url(key)
        assert (stored.key, stored.size, stored.content_type) == (key, 8, "image/png")
        assert await storage.get(key) == b"\x89PNG\r\n\x1a\n"
        assert await storage.exists(key)
        assert not await storage.exists("images/三体/none.png")
        head = await storage.client.head_object(Bucket=r2_env["R2_BUCKET_NAME"], Key=key)
        assert head["ContentType"] == "image/png"
        assert head["CacheControl"] == "public, max-age=60"
        await storage.put(key, b"second", content_type="image/png")
        assert await storage.get(key) == b"second"
        head = await storage.client.head_object(Bucket=r2_env["R2_BUCKET_NAME"], Key=key)
        assert "CacheControl" not in head


@pytest.mark.anyio
async def test_r2_missing_object(r2_env: dict[str, str]) -> None:
    async with storage_from_env(r2_env) as storage:
        with pytest.raises(ObjectNotFound, match=re.escape("novels/none.txt")):
            await storage.get("novels/none.txt")


@pytest.mark.anyio
async def test_r2_refuses_unsafe_keys_before_any_request(r2_env: dict[str, str]) -> None:
    async with storage_from_env(r2_env) as storage:
        with pytest.raises(StorageKeyError):
            await storage.put("../x", b"x", content_type="text/plain")


def put_headers(client: object) -> list[dict[str, str]]:
    """Record the headers of every PutObject request the client sends from now on."""
    seen: list[dict[str, str]] = []

    def record(request: object, **_: object) -> None:
        seen.append({k.lower(): v for k, v in request.headers.items()})  # type: ignore[attr-defined]

    client.meta.events.register("before-send.s3.PutObject", record)  # type: ignore[attr-defined]
    return seen


@pytest.mark.anyio
async def test_r2_uploads_carry_no_checksum_trailers_and_no_acl(r2_env: dict[str, str]) -> None:
    async with storage_from_env(r2_env) as storage:
        sent = put_headers(storage.client)
        await storage.put("a.txt", b"hello", content_type="text/plain")
    assert len(sent) == 1
    assert not [name for name in sent[0] if "checksum" in name or name == "x-amz-acl"]
    assert b"aws-chunked" not in str(sent[0].get("content-encoding", "")).encode()

    # The same upload with botocore's defaults does add checksums: the check above can fail.
    async with aioboto3.Session().client(
        "s3",
        endpoint_url=r2_env["R2_ENDPOINT_URL"],
        region_name="auto",
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        config=AioConfig(signature_version="s3v4"),
    ) as default_client:
        sent = put_headers(default_client)
        await default_client.put_object(Bucket=r2_env["R2_BUCKET_NAME"], Key="b.txt", Body=b"hi")
    assert [name for name in sent[0] if name.startswith("x-amz-checksum-")]


@pytest.mark.anyio
async def test_r2_missing_bucket_fails_then_succeeds(moto_server: MotoS3) -> None:
    bucket = "cineqo-created-late-" + os.urandom(4).hex()
    async with storage_from_env(moto_server.r2_env(bucket)) as storage:
        with pytest.raises(StorageError, match="NoSuchBucket") as caught:
            await storage.put("a.txt", b"x", content_type="text/plain")
        assert not isinstance(caught.value, ObjectNotFound)
        assert_no_secrets(str(caught.value), repr(caught.value))
        moto_server.create_bucket(bucket)
        await storage.put("a.txt", b"x", content_type="text/plain")
        assert await storage.get("a.txt") == b"x"


@pytest.mark.anyio
async def test_r2_unreachable_server_is_a_storage_error(r2_env: dict[str, str]) -> None:
    dead = R2Config.from_env(r2_env | {"R2_ENDPOINT_URL": closed_port_url()})
    assert dead is not None
    async with R2Storage.open(dead, retries=0) as storage:
        for call in (
            storage.put("a.txt", b"x", content_type="text/plain"),
            storage.get("a.txt"),
            storage.exists("a.txt"),
        ):
            with pytest.raises(StorageError, match="could not") as caught:
                await call
            assert_no_secrets(str(caught.value), repr(caught.value))
        assert_no_secrets(repr(storage), storage.describe())
    live = R2Config.from_env(r2_env)
    assert live is not None
    async with R2Storage.open(live, retries=0) as storage:
        await storage.put("a.txt", b"x", content_type="text/plain")
        assert await storage.exists("a.txt")
