"""The docs stay true: every `jobrunner` command they show parses, and generated parts are fresh."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from types import ModuleType

import pytest

from jobrunner._cli._parser import build_parser
from jr_docs import code_blocks, jobrunner_commands, shell_lines
from jr_support import REPO

DOC_FILES = sorted(
    [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "docs" / "zh").glob("*.md")]
)
SHELL_BLOCKS = {"bash", "sh", "shell", "console"}


def documented_commands() -> list[tuple[str, list[str]]]:
    out = []
    for path in DOC_FILES:
        for lang, body in code_blocks(path.read_text("utf-8")):
            if lang not in SHELL_BLOCKS:
                continue
            for line in shell_lines(lang, body):
                for argv in jobrunner_commands(line):
                    out.append((f"{path.relative_to(REPO)}: {line}", argv))
    return out


def parse_error(argv: list[str]) -> str | None:
    """None when the real parser accepts `argv` (or prints help/version), else its message."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:
            return None if exc.code == 0 else err.getvalue().strip() or f"exit {exc.code}"
    if not getattr(args, "command", None):
        return "no command given"
    return None


COMMANDS = documented_commands()


def test_the_docs_show_many_commands():
    assert len(COMMANDS) >= 40, COMMANDS
    names = {argv[0] for _, argv in COMMANDS if argv and not argv[0].startswith("-")}
    assert names >= {"run", "migrate", "enqueue", "status", "jobs", "prune", "plugins"}


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_is_real(where, argv):
    assert parse_error(argv) is None, f"{where}\n{parse_error(argv)}"


def test_the_checker_rejects_what_the_cli_rejects():
    assert parse_error(["run", "--plugin", "diag", "--burst"]) is None
    assert parse_error(["enqueue", "diag.noop", "--wait"]) is None
    assert parse_error(["--help"]) is None
    assert "unrecognized arguments: --colour" in parse_error(["status", "--colour"])
    assert "invalid int value" in parse_error(["jobs", "show", "forty-two"])
    assert parse_error(["jobs"]) is not None
    assert parse_error([]) == "no command given"


def test_shell_lines_are_split_into_commands():
    line = 'DATABASE_URL=x id=$(jobrunner enqueue diag.noop) && jobrunner jobs show "$id" # note'
    assert jobrunner_commands(line) == [["enqueue", "diag.noop"], ["jobs", "show", "1"]]
    console = "$ jobrunner status\ntype  pending\n$ jobrunner run \\\n    --burst\n"
    assert shell_lines("console", console) == ["jobrunner status", "jobrunner run --burst"]


def test_readme_opens_with_the_two_commands():
    text = (REPO / "README.md").read_text("utf-8")
    lang, body = code_blocks(text)[0]
    assert text.index("```") < 200, "the commands come first"
    lines = shell_lines(lang, body)
    assert len(lines) == 2
    run, test = lines
    # A fresh Debian or Ubuntu refuses `pip install` into the system's Python (PEP 668): the
    # first command makes its own virtual environment and runs the worker from it.
    assert run.startswith("scripts/run ") and "pip install" not in run
    assert parse_error(["run", *run.split()[1:]]) is None
    script = (REPO / "scripts" / "run").read_text()
    assert 'exec "$VENV/bin/jobrunner" run "$@"' in script
    assert '-e "$REPO[binary]" -e "$REPO/plugins/cineqo"' in script
    assert test == "scripts/test"
    for name in ("run", "test"):
        assert (REPO / "scripts" / name).stat().st_mode & 0o111, f"scripts/{name} is executable"
    assert (REPO / "plugins" / "cineqo" / "pyproject.toml").exists()


def test_every_command_has_a_section_in_cli_md():
    text = (REPO / "docs" / "cli.md").read_text("utf-8")
    parser = build_parser()
    [sub] = [a for a in parser._actions if a.dest == "command"]
    for name in sub.choices:
        assert f"## jobrunner {name}" in text, name


def test_relative_links_in_the_docs_point_at_files():
    broken = []
    for path in [*DOC_FILES, REPO / "examples" / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text("utf-8")):
            if "://" in target:
                continue
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(REPO)} → {target}")
    assert not broken


def _gen_script() -> ModuleType:
    path = REPO / "scripts" / "gen_config_docs.py"
    spec = importlib.util.spec_from_file_location("gen_config_docs", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("filename", ["configuration.md", "schema.md"])
def test_generated_docs_are_up_to_date(filename):
    gen = _gen_script()
    path = REPO / "docs" / filename
    assert path.read_text("utf-8") == gen.expected(path), (
        f"docs/{filename} is stale: run scripts/gen_config_docs.py"
    )


def test_configuration_md_lists_every_setting():
    from jobrunner._settings import reference_table

    text = (REPO / "docs" / "configuration.md").read_text("utf-8")
    for flag, env, _, _ in reference_table():
        assert f"`{flag}`" in text
        assert f"`{env}`" in text


def test_the_generator_replaces_only_its_block():
    gen = _gen_script()
    text = f"intro\n{gen._begin('x')}\nold\n{gen._end('x')}\noutro\n"
    assert (
        gen.render(text, "x", "new") == f"intro\n{gen._begin('x')}\nnew\n{gen._end('x')}\noutro\n"
    )
    with pytest.raises(ValueError, match="markers"):
        gen.render("no markers here", "x", "new")


# Pages whose Python examples are whole (imports included); concepts.md shows fragments.
WHOLE_EXAMPLES = ["embedding.md", "getting-started.md", "monitoring.md", "plugins.md", "testing.md"]


@pytest.mark.parametrize("page", WHOLE_EXAMPLES)
def test_python_examples_name_only_what_they_import_or_define(page):
    """Each page's examples, read in order, use no undefined name (e.g. a class not imported).
    Blocks that are not Python statements (a signature shown with `*`) are skipped."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    kept = []
    for lang, body in code_blocks((REPO / "docs" / page).read_text("utf-8")):
        if lang != "python":
            continue
        try:
            compile(body, page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError:
            continue
        kept.append(body)
    assert kept, page
    ruff = Path(sys.executable).with_name("ruff")
    name = page.replace(".md", "_examples.py")
    done = subprocess.run(
        [ruff, "check", "--select", "F821", "--no-cache", "--stdin-filename", name, "-"],
        input="\n".join(kept),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout
