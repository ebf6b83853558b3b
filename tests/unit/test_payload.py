"""Payload types: errors that name the field, JSON Schema, TypeScript, and the handler API."""

from __future__ import annotations

import enum
import json
import subprocess
import sys
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from jobrunner import ConfigurationError, Job, JobContext, PayloadError, Plugin
from jobrunner._context import JobServices
from jobrunner._diag import plugin as diag
from jobrunner._job import encode_json
from jobrunner._payload import PayloadModel
from jobrunner._typescript import interface_name, typescript
from jr_support import JOBRUNNER


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Chapter(BaseModel):
    """One chapter."""

    title: str
    words: int = 0


class Book(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chapters: list[Chapter]
    cover: Colour | None = None
    size: tuple[int, int] = (1, 2)
    tags: dict[str, float] = Field(default_factory=dict)
    mode: Literal["draft", "final"] = "draft"
    weird_key: str = Field("", alias="weird-key")


def test_errors_name_each_field_with_its_path_and_the_value_as_json():
    model = PayloadModel(Book)
    with pytest.raises(PayloadError) as caught:
        model.validate(
            {"chapters": [{"title": "One"}, {"words": "many"}], "mode": "wip", "extra": True},
            job_type="book.print",
        )
    assert str(caught.value) == (
        "book.print payload: chapters.1.title: Field required; "
        "chapters.1.words: Input should be a valid integer, unable to parse string as an integer "
        '(got "many"); '
        "mode: Input should be 'draft' or 'final' (got \"wip\"); "
        "extra: Extra inputs are not permitted (got true)"
    )


def test_a_long_list_of_errors_is_counted_and_long_values_are_cut():
    model = PayloadModel(Book)
    chapters = [{"words": "x" * 200} for _ in range(4)]
    with pytest.raises(PayloadError) as caught:
        model.validate({"chapters": chapters}, job_type="book.print")
    text = str(caught.value)
    assert text.endswith("; and 3 more")
    assert f'(got "{"x" * 58}…)' in text
    with pytest.raises(PayloadError, match=r"^book.print payload: Input should be a JSON object"):
        model.validate(["not", "an", "object"], job_type="book.print")


def test_a_rule_over_the_whole_payload_is_stated_without_a_copy_of_it():
    from pydantic import model_validator

    class Pair(BaseModel):
        text: str | None = None
        source: str | None = None

        @model_validator(mode="after")
        def one_of(self) -> Pair:
            if (self.text is None) == (self.source is None):
                raise ValueError("give 'text' or 'source', not both")
            return self

    with pytest.raises(PayloadError) as caught:
        PayloadModel(Pair).validate({"text": "a" * 50, "source": "b"}, job_type="t")
    assert str(caught.value) == "t payload: Value error, give 'text' or 'source', not both"
    with pytest.raises(PayloadError, match=r"Input should be a JSON object \(got \[1\]\)"):
        PayloadModel(Pair).validate([1], job_type="t")


def test_a_type_pydantic_cannot_validate_is_refused_when_registered():
    plugin = Plugin("p")
    with pytest.raises(ConfigurationError, match="is not a type pydantic can validate"):
        plugin.handler("p.x", payload=object())(lambda ctx: None)


def test_ctx_data_without_a_payload_type_says_to_read_payload():
    ctx: JobContext = JobContext(
        job=Job(id=1, type="p.raw", payload={"a": 1}),
        services=JobServices(worker_id="w", backend=None, enqueue_many=None),  # type: ignore[arg-type]
    )
    assert ctx.payload == {"a": 1}
    with pytest.raises(ConfigurationError, match="declares no payload type.*ctx.payload"):
        _ = ctx.data


def test_models_are_written_as_their_json_wherever_json_goes():
    assert encode_json(Chapter(title="A"), what="result", max_bytes=100) == (
        '{"title":"A","words":0}'
    )
    assert json.loads(encode_json({"book": [Chapter(title="B")]}, what="payload", max_bytes=100))
    with pytest.raises(PayloadError, match="not JSON-serialisable"):
        encode_json(object(), what="result", max_bytes=100)


def test_the_diag_schemas_are_published():
    sleep = diag.handlers["diag.sleep"].payload
    assert sleep is not None
    schema = sleep.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert schema["properties"]["seconds"] == {
        "default": 1.0,
        "description": "How long to sleep, in seconds.",
        "maximum": 86400,
        "minimum": 0,
        "title": "Seconds",
        "type": "number",
    }
    assert diag.handlers["diag.noop"].payload is None


def test_typescript_of_the_diag_payloads():
    schemas = {t: h.payload.json_schema() if h.payload else None for t, h in diag.handlers.items()}
    text = typescript(schemas)
    assert "export interface DiagSleepPayload {\n" in text
    assert "  seconds?: number;\n" in text
    assert "  message?: string;\n  /**" in text and "  permanent?: boolean;\n  /**" in text
    assert "  rate_limited?: number | null;\n}" in text
    assert "export type DiagNoopPayload = unknown;\n" in text
    assert text.endswith(
        "export interface JobPayloads {\n"
        '  "diag.fail": DiagFailPayload;\n'
        '  "diag.noop": DiagNoopPayload;\n'
        '  "diag.sleep": DiagSleepPayload;\n'
        "}\n\nexport type JobType = keyof JobPayloads;\n"
    )


def test_typescript_covers_nested_models_unions_literals_tuples_and_records():
    text = typescript({"book.print": PayloadModel(Book).json_schema()})
    assert interface_name("book.print") == "BookPrintPayload"
    expected = [
        "export interface BookPrintPayload {",
        "  chapters: BookPrintPayloadChapter[];",
        "  cover?: BookPrintPayloadColour | null;",
        "  size?: [number, number];",
        "  tags?: Record<string, number>;",
        '  mode?: "draft" | "final";',
        '  "weird-key"?: string;',
        "/** One chapter. */\nexport interface BookPrintPayloadChapter {",
        "  title: string;",
        "  words?: number;",
        'export type BookPrintPayloadColour = "red" | "blue";',
    ]
    for line in expected:
        assert line in text, line


def test_jobrunner_schema_prints_json_schema_and_typescript():
    def jr(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [JOBRUNNER, *args], capture_output=True, text=True, timeout=60, check=False
        )

    schemas = json.loads(jr("schema", "-p", "diag").stdout)
    assert set(schemas) == {"diag.noop", "diag.sleep", "diag.fail"}
    assert schemas["diag.noop"] == {}, "no payload type: any JSON value"
    assert schemas["diag.fail"]["properties"]["permanent"]["type"] == "boolean"
    assert set(json.loads(jr("schema", "diag.sleep").stdout)) == {"diag.sleep"}
    assert jr("schema", "-p", "diag", "--typescript").stdout == typescript(
        {t: h.payload.json_schema() if h.payload else None for t, h in diag.handlers.items()}
    )
    unknown = jr("schema", "-p", "diag", "no.such")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("jobrunner: error: no loaded plugin has job type 'no.such'")
    listed = {p["name"]: p for p in json.loads(jr("plugins", "--json").stdout)}
    sleep = listed["diag"]["job_types"]["diag.sleep"]
    assert sleep["payload_schema"] == schemas["diag.sleep"]
    assert sleep["description"] == "Await `seconds` (default 1), reporting progress."
    assert listed["diag"]["job_types"]["diag.noop"]["payload_schema"] is None


def test_importing_jobrunner_does_not_import_pydantic():
    code = "import sys, jobrunner\njobrunner.Runner\nprint('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_plugins_md_example_declares_and_checks_its_payload():
    from jr_docs import code_blocks
    from jr_support import REPO

    text = (REPO / "docs" / "plugins.md").read_text("utf-8")
    section = text.split("### Typed payloads", 1)[1].split("\n### ", 1)[0]
    [source] = [body for lang, body in code_blocks(section) if lang == "python"]
    namespace: dict = {}
    exec(compile(source, "plugins.md", "exec"), namespace)
    handler = namespace["plugin"].handlers["images.resize"]
    assert handler.payload is not None
    assert handler.payload.json_schema()["required"] == ["url", "width"]
    with pytest.raises(PayloadError, match=r"width: Input should be greater than 0 \(got 0\)"):
        handler.payload.validate({"url": "u", "width": 0}, job_type="images.resize")
