"""The OpenAI side of character extraction: one chat completion per chunk, run concurrently.

Errors::

    LLMNotConfigured(ValueError)     no API key in the environment (names the variable only)
    LLMRequestRejected(ValueError)   4xx other than 408/409/429: bad key, model, schema; permanent
    LLMUnavailable(RuntimeError)     5xx/408/409/timeouts/connection errors left after our
                                     retries, or an exhausted quota; retry the job later
    └── LLMRateLimited               a 429 (rate limit): pause the job type on every worker

Retries are ours, not the SDK's: it retries a 429 in place (honouring Retry-After), which is
what one worker must not do when the whole cluster should stop asking. So every request goes
out with `max_retries=0`, and `_complete` retries what the SDK would (connection errors,
timeouts, 408, 409, 5xx) up to the client's `max_retries` times — but never a 429, which is
`LLMRateLimited` at once with the server's `retry-after-ms` / `Retry-After` (seconds or an HTTP
date). A 429 whose code is `insufficient_quota` is a billing matter, not a rate: it stays an
`LLMUnavailable`, retried with the job's backoff and bounded by its attempts.

A chunk whose answer stays unusable (refusal, content filter, cut off, malformed JSON) after
`attempts_per_chunk` tries becomes a warning on that chunk, not a failed job.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._retry_after import retry_after
from .._spans import span
from .chunks import ChapterLike, Chunk, chunk_chapters
from .merge import (
    CastOptions,
    CastResult,
    CharacterDraft,
    ChunkExtraction,
    Usage,
    build_cast,
)
from .prompts import (
    RESPONSE_MODES,
    KnownCast,
    ResponseMode,
    Roster,
    UnusableAnswer,
    build_messages,
    parse_answer,
    response_format,
)

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"

ChunkDone = Callable[[int, dict[str, Any]], Awaitable[None]]
Progress = Callable[[int, int], Awaitable[None]]
UsageSink = Callable[[Usage], None]
Sleep = Callable[[float], Awaitable[object]]
_RETRIED_STATUS = frozenset({408, 409})  # and every 5xx; never 429
_BACKOFF_CAP = 8.0  # seconds, as the SDK's own backoff
_MAX_HONOURED_WAIT = 60.0  # a longer Retry-After on a 5xx is left to the job's retry


class LLMNotConfigured(ValueError):
    """The LLM is not configured."""


class LLMUnavailable(RuntimeError):
    """The LLM service failed after the client's retries; the job may be retried later."""


class LLMRateLimited(LLMUnavailable):
    """The LLM service answered 429: too many requests or tokens for now."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds, from the answer's headers


class LLMRequestRejected(ValueError):
    """The LLM service rejected the request itself; retrying the same request will not help."""


@attrs.frozen(kw_only=True)
class LLM:
    """The `openai` resource: the shared client, and the defaults jobs start from."""

    client: openai.AsyncOpenAI = attrs.field(repr=False)
    model: str
    response_mode: ResponseMode


def client_from_env(
    env: Mapping[str, str], *, max_retries: int = 3, timeout: float = 120.0
) -> tuple[openai.AsyncOpenAI, str]:
    """An `AsyncOpenAI` client and a model name from the environment `env`.

    Reads OPENAI_API_KEY (required), OPENAI_BASE_URL and CINEQO_LLM_MODEL from `env` only: the
    base URL is always passed, so the SDK never falls back to the process environment.
    """
    import openai  # lazy: `jobrunner --help` must not import the SDK

    key = env.get("OPENAI_API_KEY", "").strip()
    if not key:
        raise LLMNotConfigured("OPENAI_API_KEY is not set: the LLM needs an API key")
    client = openai.AsyncOpenAI(
        api_key=key,
        base_url=env.get("OPENAI_BASE_URL", "").strip() or DEFAULT_BASE_URL,
        max_retries=max_retries,
        timeout=timeout,
    )
    return client, env.get("CINEQO_LLM_MODEL", "").strip() or DEFAULT_MODEL


def response_mode_from_env(env: Mapping[str, str]) -> ResponseMode:
    """CINEQO_LLM_RESPONSE_FORMAT: json_schema (default) or json_object for servers without it."""
    value = env.get("CINEQO_LLM_RESPONSE_FORMAT", "").strip() or "json_schema"
    for mode in RESPONSE_MODES:
        if value == mode:
            return mode
    raise LLMNotConfigured(f"CINEQO_LLM_RESPONSE_FORMAT must be one of {RESPONSE_MODES}")


@attrs.define(kw_only=True)
class _Run:
    """The state of one `extract_chunks` call, shared by its chunk tasks."""

    total: int
    results: dict[int, ChunkExtraction]
    on_chunk_done: ChunkDone | None
    on_progress: Progress | None
    known: KnownCast = attrs.Factory(KnownCast)
    failure: Exception | None = None


@attrs.define(kw_only=True)
class CastExtractor:
    """Asks the model for each chunk's characters, `concurrency` chunks at a time."""

    client: openai.AsyncOpenAI = attrs.field(repr=False)
    model: str = DEFAULT_MODEL
    response_mode: ResponseMode = "json_schema"
    concurrency: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    attempts_per_chunk: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    max_known: int = 40
    known_aliases: int = 3
    temperature: float | None = None
    #: Called with each answered request's usage, as soon as it is answered (what was paid).
    on_usage: UsageSink | None = attrs.field(default=None, repr=False)
    sleep: Sleep = attrs.field(default=anyio.sleep, repr=False)
    _once: openai.AsyncOpenAI | None = attrs.field(default=None, init=False, repr=False)

    async def extract_cast(
        self,
        chapters: Sequence[ChapterLike],
        options: CastOptions | None = None,
        *,
        done: Mapping[Any, Mapping[str, Any]] | None = None,
        on_chunk_done: ChunkDone | None = None,
        on_progress: Progress | None = None,
    ) -> CastResult:
        """Chunk, extract, merge, count and rank: the whole of `character.extract` but storage."""
        options = options or CastOptions()
        chunks = chunk_chapters(chapters, options.chunk_tokens)
        extractions = await self.extract_chunks(
            chunks, done=done, on_chunk_done=on_chunk_done, on_progress=on_progress
        )
        return build_cast(chapters, extractions, options)

    async def extract_chunks(
        self,
        chunks: Sequence[Chunk],
        *,
        done: Mapping[Any, Mapping[str, Any]] | None = None,
        on_chunk_done: ChunkDone | None = None,
        on_progress: Progress | None = None,
    ) -> list[ChunkExtraction]:
        """One extraction per chunk, in chunk order; chunks already in `done` are not asked again.

        `done` maps chunk index (int or its JSON string form) to what `on_chunk_done` was given
        by an earlier attempt; an entry whose text digest no longer matches is asked again.
        `on_progress(done, total)` is awaited once at the start and after every chunk.
        """
        run = _Run(
            total=len(chunks),
            results=_resumed(chunks, done or {}),
            on_chunk_done=on_chunk_done,
            on_progress=on_progress,
        )
        for index in sorted(run.results):
            run.known.add(run.results[index].characters)
        if on_progress is not None:
            await on_progress(len(run.results), run.total)
        # `concurrency` workers share one iterator, so chunks start in order on any backend
        # (trio shuffles task start order) and each later chunk sees the earlier ones' cast.
        todo = iter([chunk for chunk in chunks if chunk.index not in run.results])
        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(self._work, run, todo, tg.cancel_scope)
        if run.failure is not None:
            raise run.failure
        return [run.results[chunk.index] for chunk in chunks]

    async def _work(self, run: _Run, todo: Iterator[Chunk], scope: anyio.CancelScope) -> None:
        for chunk in todo:
            roster = run.known.roster(self.max_known, self.known_aliases)
            try:
                extraction = await self.extract_chunk(chunk, roster)
            except (LLMUnavailable, LLMRequestRejected) as exc:
                # Finished chunks are checkpointed already; stop the rest and let the job retry.
                if run.failure is None:
                    run.failure = exc
                scope.cancel()
                return
            run.results[chunk.index] = extraction
            run.known.add(extraction.characters)
            if run.on_chunk_done is not None:
                # Shielded: an answer we paid for is saved even if a sibling chunk fails now.
                with anyio.CancelScope(shield=True):
                    await run.on_chunk_done(chunk.index, extraction.to_json())
            if run.on_progress is not None:
                await run.on_progress(len(run.results), run.total)

    async def extract_chunk(self, chunk: Chunk, roster: Roster = ()) -> ChunkExtraction:
        """Ask about one chunk, up to `attempts_per_chunk` times while the answer is unusable."""
        messages = build_messages(chunk, roster, self.response_mode)
        usage = Usage()
        problems: list[str] = []
        for attempt in range(1, self.attempts_per_chunk + 1):
            completion = await self._complete(messages)
            usage += _usage(completion)
            try:
                drafts, notes = _read(completion)
            except UnusableAnswer as exc:
                problems.append(f"attempt {attempt}: {exc}")
                continue
            return _extraction(chunk, drafts, notes, usage)
        warning = f"no usable answer after {self.attempts_per_chunk} attempts: " + "; ".join(
            problems
        )
        return _extraction(chunk, [], [warning], usage)

    async def _complete(self, messages: list[ChatCompletionMessageParam]) -> ChatCompletion:
        import openai

        retries = self.client.max_retries
        if self._once is None:  # a copy that shares the connection pool
            self._once = self.client.with_options(max_retries=0)
        client = self._once
        for attempt in range(retries + 1):
            try:
                with span("openai chat.completions", model=self.model, attempt=attempt):
                    completion = await client.chat.completions.create(
                        model=self.model,
                        messages=messages,
                        response_format=response_format(self.response_mode),
                        # `omit` leaves the field out: the server's default applies.
                        temperature=openai.omit if self.temperature is None else self.temperature,
                    )
            except openai.APIStatusError as exc:
                wait = self._wait(exc, attempt, retries)
                if wait is None:
                    raise self._status_error(exc, retries) from exc
            except openai.APIConnectionError as exc:  # timeouts too
                if attempt >= retries:
                    text = f"LLM service unreachable: {exc} (after {retries} retries)"
                    raise LLMUnavailable(self._redact(text)) from exc
                wait = _backoff(attempt)
            except openai.APIError as exc:
                raise LLMUnavailable(self._redact(f"LLM service unreachable: {exc}")) from exc
            else:
                if self.on_usage is not None:
                    self.on_usage(_usage(completion))
                return completion
            await self.sleep(wait)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    @staticmethod
    def _wait(exc: openai.APIStatusError, attempt: int, retries: int) -> float | None:
        """Seconds before asking again, or None when this answer is final."""
        status = exc.status_code
        if attempt >= retries or not (status in _RETRIED_STATUS or status >= 500):
            return None
        given = retry_after(exc.response.headers)
        if given is not None and 0 < given <= _MAX_HONOURED_WAIT:
            return given
        return _backoff(attempt)

    def _status_error(self, exc: openai.APIStatusError, retries: int) -> Exception:
        status = exc.status_code
        text = self._redact(f"LLM service answered HTTP {status}: {exc.message}")
        if status == 429 and exc.code != "insufficient_quota":
            return LLMRateLimited(text, retry_after=retry_after(exc.response.headers))
        if status == 429:
            return LLMUnavailable(f"{text} (the account's quota is used up)")
        if status in (408, 409) or status >= 500:
            return LLMUnavailable(f"{text} (after {retries} retries)")
        if status == 400 and self.response_mode == "json_schema":
            text += "; a server without json_schema needs CINEQO_LLM_RESPONSE_FORMAT=json_object"
        return LLMRequestRejected(text)

    def _redact(self, text: str) -> str:
        # Servers may echo the key back in an error message; it must never reach our errors.
        key = self.client.api_key
        return text.replace(key, "<redacted>") if key else text


def _backoff(attempt: int) -> float:
    """The SDK's own backoff: 0.5 s doubling per retry up to 8 s, less up to a quarter."""
    return min(0.5 * 2.0**attempt, _BACKOFF_CAP) * (1 - 0.25 * random.random())


def _usage(completion: ChatCompletion) -> Usage:
    usage = completion.usage
    if usage is None:
        return Usage(llm_calls=1)
    return Usage(
        llm_calls=1,
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
    )


def _read(completion: ChatCompletion) -> tuple[list[CharacterDraft], list[str]]:
    if not completion.choices:
        raise UnusableAnswer("answer has no choices")
    choice = completion.choices[0]
    refusal = getattr(choice.message, "refusal", None)
    if refusal:
        raise UnusableAnswer(f"model refused: {refusal[:200]}")
    if choice.finish_reason == "content_filter":
        raise UnusableAnswer("answer stopped by the content filter")
    if choice.finish_reason == "length":
        raise UnusableAnswer("answer cut off at the token limit")
    return parse_answer(choice.message.content)


def _extraction(
    chunk: Chunk, drafts: list[CharacterDraft], notes: list[str], usage: Usage
) -> ChunkExtraction:
    return ChunkExtraction(
        chunk=chunk.index,
        digest=chunk.digest,
        chapters=chunk.chapters,
        characters=tuple(drafts),
        warnings=tuple(notes),
        usage=usage,
    )


def _resumed(
    chunks: Sequence[Chunk], done: Mapping[Any, Mapping[str, Any]]
) -> dict[int, ChunkExtraction]:
    """Earlier results that still match their chunk's text; anything unreadable is redone."""
    by_index = {chunk.index: chunk for chunk in chunks}
    results: dict[int, ChunkExtraction] = {}
    for key, data in done.items():
        try:
            extraction = ChunkExtraction.from_json(dict(data))
        except (KeyError, TypeError, ValueError):
            continue
        chunk = by_index.get(extraction.chunk)
        if chunk is not None and str(key) == str(chunk.index) and extraction.digest == chunk.digest:
            results[chunk.index] = extraction
    return results
