"""Reading the docs' code blocks (import as `from jr_docs import …`)."""

from __future__ import annotations

import re
import shlex

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_VARIABLE = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced code block."""
    return [(m[1].lower(), m[2]) for m in _FENCE.finditer(text)]


def shell_lines(lang: str, body: str) -> list[str]:
    """The command lines of a shell block; in a console block, only those after `$ `."""
    lines, pending = [], ""
    for raw in body.splitlines():
        line = raw.strip()
        if lang == "console" and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        lines.append(pending + line)
        pending = ""
    return lines


def jobrunner_commands(line: str) -> list[list[str]]:
    """The argv (after `jobrunner`) of each jobrunner command on a shell line."""
    found = []
    # `$(jobrunner …)` and pipelines: look at each simple command separately.
    for part in re.split(r"&&|\|\||[;|]|\$\(|\)", line):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            continue
        while words and _ASSIGNMENT.match(words[0]):
            words.pop(0)  # VAR=value prefixes
        if words and words[0] == "jobrunner":
            # A shell variable stands for a value the reader supplies (a job id, a URL).
            found.append(["1" if _VARIABLE.match(w) else w for w in words[1:]])
    return found
