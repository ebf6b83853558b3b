"""The cineqo payloads as a contract: each job type's model is published as JSON Schema and
TypeScript by the real CLI, docs/cineqo.md lists exactly the models' keys, its example payloads
validate, and a Runner that loaded the plugin refuses a bad payload before writing it."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from jobrunner import PayloadError
from jobrunner_cineqo import plugin
from jr_docs import code_blocks
from jr_support import JOBRUNNER, REPO

TYPES = ("novel.split", "character.extract", "image.generate", "novel.process")
NOVEL = {"text", "source", "encoding", "novel_id"}
# What each type's schema must declare: its keys, and the required ones.
KEYS = {
    "novel.split": NOVEL | {"max_chapter_chars"},
    "character.extract": NOVEL
    | {"split_manifest", "split_job_id", "model", "max_characters", "language"},
    "image.generate": {
        "prompt",
        "negative_prompt",
        "model",
        "image_size",
        "num_images",
        "seed",
        "output_format",
        "key_prefix",
        "novel_id",
        "metadata",
    },
    "novel.process": NOVEL
    | {"max_chapter_chars", "model", "max_characters", "portraits"}
    | {"image_model", "image_size", "output_format", "key_prefix"},
}
REQUIRED = {"image.generate": ["prompt"]}
INTERFACES = {
    "novel.split": "NovelSplitPayload",
    "character.extract": "CharacterExtractPayload",
    "image.generate": "ImageGeneratePayload",
    "novel.process": "NovelProcessPayload",
}


def jobrunner(*args: str) -> str:
    done = subprocess.run(
        [JOBRUNNER, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def validate(job_type: str, payload: Any) -> Any:
    model = plugin.handlers[job_type].payload
    assert model is not None, f"{job_type} declares no payload type"
    return model.validate(payload, job_type=job_type)


def docs_section(job_type: str) -> str:
    text = (REPO / "docs" / "cineqo.md").read_text("utf-8")
    return text.split(f"\n## `{job_type}`\n", 1)[1].split("\n## ", 1)[0]


def test_jobrunner_schema_prints_each_types_json_schema() -> None:
    schemas = json.loads(jobrunner("schema", *TYPES))
    assert sorted(schemas) == sorted(TYPES)
    for job_type in TYPES:
        schema = schemas[job_type]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema["properties"]) == KEYS[job_type], job_type
        assert schema.get("required", []) == REQUIRED.get(job_type, []), job_type
        assert all(p.get("description") for p in schema["properties"].values()), job_type
    split = schemas["novel.split"]["properties"]
    assert (split["max_chapter_chars"]["minimum"], split["max_chapter_chars"]["default"]) == (
        100,
        20000,
    )
    image = schemas["image.generate"]["properties"]
    assert image["num_images"]["maximum"] == 4
    assert {"enum": ["jpeg", "png"], "type": "string"} in image["output_format"]["anyOf"]
    assert image["prompt"]["maxLength"] == 8000
    assert schemas["novel.process"]["properties"]["portraits"]["maximum"] == 20

    listed = {p["name"]: p for p in json.loads(jobrunner("plugins", "--json"))}
    published = listed["cineqo"]["job_types"]
    assert {t: published[t]["payload_schema"] for t in TYPES} == schemas


def test_jobrunner_schema_typescript_declares_each_field() -> None:
    text = jobrunner("schema", "--typescript", *TYPES)
    for job_type, name in INTERFACES.items():
        match = re.search(rf"export interface {name} \{{\n(.*?)\n\}}\n", text, re.S)
        assert match, f"no interface {name}"
        declared = dict(re.findall(r"^  (\w+)(\??): ", match[1], re.M))
        assert set(declared) == KEYS[job_type], job_type
        required = {key for key, optional in declared.items() if not optional}
        assert required == set(REQUIRED.get(job_type, [])), job_type
        assert f'  "{job_type}": {name};' in text
    assert 'output_format?: "jpeg" | "png" | null;' in text
    assert "novel_id?: string | number | null;" in text
    assert "unknown" not in text.split("export interface JobPayloads")[0].replace(
        "Record<string, unknown>", ""
    )


@pytest.mark.parametrize("job_type", TYPES)
def test_the_docs_table_lists_exactly_the_models_keys(job_type: str) -> None:
    section = docs_section(job_type)
    table = re.search(r"^\| key \|.*?\n\n", section, re.S | re.M)
    assert table, f"no payload table under {job_type}"
    rows = [row for row in table[0].splitlines()[2:] if row.startswith("|")]
    documented = {key for row in rows for key in re.findall(r"`(\w+)`", row.split("|")[1])}
    model = plugin.handlers[job_type].payload
    assert model is not None
    assert documented == set(model.type.model_fields) == KEYS[job_type]


@pytest.mark.parametrize("job_type", TYPES)
def test_the_docs_example_payloads_validate(job_type: str) -> None:
    section = docs_section(job_type)
    examples = section.split("Example payloads, one per line:", 1)
    assert len(examples) == 2, f"no example payloads under {job_type}"
    lang, body = code_blocks(examples[1])[0]
    payloads = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert lang == "json" and len(payloads) >= 2
    for payload in payloads:
        validate(job_type, payload)


def test_the_models_keep_the_rules_named_by_field() -> None:
    ok = validate("novel.split", {"source": "a.txt", "encoding": "GBK", "novel_id": 7})
    assert (ok.encoding, ok.novel_id, ok.max_chapter_chars) == ("gbk", "7", 20000)
    assert validate("novel.split", {"text": "t", "source": None}).source is None, "null: absent"
    process = validate(
        "novel.process", {"text": "t", "novel_id": 3, "image_model": "a/b", "key_prefix": "p/"}
    )
    assert process.split == {"text": "t", "novel_id": "3"}
    assert process.portrait_options == {"model": "a/b", "key_prefix": "p"}
    image = validate("image.generate", {"prompt": " p ", "seed": 3, "image_size": "square_hd"})
    assert image.arguments() == {
        "prompt": "p",
        "num_images": 1,
        "image_size": "square_hd",
        "seed": 3,
    }
    refused = [
        ("novel.split", {"text": "t", "max_chapter_chars": "500"}, "max_chapter_chars: Input"),
        ("novel.split", {"source": "a", "encoding": "klingon"}, "unknown encoding 'klingon'"),
        ("character.extract", {}, "exactly one of 'text', 'source', 'split_manifest'"),
        ("character.extract", {"text": "t", "split_job_id": 1}, "(given: text, split_job_id)"),
        ("character.extract", {"split_job_id": True}, "split_job_id: Input should be a valid"),
        ("character.extract", {"split_manifest": "/etc/x"}, "split_manifest: unsafe"),
        ("character.extract", {"split_job_id": 1, "encoding": "gbk"}, "'source' only"),
        ("image.generate", {}, "prompt: Field required"),
        ("image.generate", {"prompt": " "}, "prompt: String should have at least 1"),
        ("image.generate", {"prompt": "p", "image_size": {"width": 0, "height": 9}}, "preset"),
        ("image.generate", {"prompt": "p", "metadata": {"x": "y" * 5000}}, "over the limit"),
        ("image.generate", {"prompt": "p", "key_prefix": "a" * 600}, "longer than 512 bytes"),
        ("image.generate", {"prompt": "p", "seed": -1}, "seed: Input should be greater"),
        ("novel.process", {"text": "t", "portraits": -1}, "portraits: Input should be"),
    ]
    for job_type, payload, message in refused:
        with pytest.raises(PayloadError, match=re.escape(message)):
            validate(job_type, payload)


@pytest.mark.anyio
async def test_a_runner_with_the_plugin_refuses_a_bad_payload_at_enqueue(cineqo: Any) -> None:
    async with cineqo.runner(worker=False) as runner:
        with pytest.raises(PayloadError, match=r"^image.generate payload: num_images: "):
            await runner.enqueue("image.generate", {"prompt": "p", "num_images": 9})
        assert await runner.list_jobs() == [], "nothing was written"
