"""`character.extract`: the pure logic (`chunks`, `merge`, `prompts`), the OpenAI client
(`llm`), the payload (`payload`) and the handler (`handler`)."""

from .handler import JOB_TYPE, register
from .payload import DEFAULT_MAX_CHARACTERS, ExtractPayload

__all__ = ("DEFAULT_MAX_CHARACTERS", "JOB_TYPE", "ExtractPayload", "register")
