"""The public surface: a small sorted `__all__`, and a plugin that only uses it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jobrunner

SRC = Path(jobrunner.__file__).resolve().parent.parent


def test_all_is_a_sorted_tuple_of_importable_names():
    assert isinstance(jobrunner.__all__, tuple)
    assert list(jobrunner.__all__) == sorted(jobrunner.__all__)
    for name in jobrunner.__all__:
        assert getattr(jobrunner, name) is not None, name
    assert set(jobrunner.__all__) == set(jobrunner._EXPORTS) | {"__version__"}


def test_error_tree_has_one_root():
    for name in jobrunner.__all__:
        value = getattr(jobrunner, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, jobrunner.JobrunnerError), name


def test_cineqo_plugin_imports_only_public_names():
    offenders = []
    for path in (SRC / "jobrunner_cineqo").rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("jobrunner.") or (
                    node.module == "jobrunner"
                    and any(a.name not in jobrunner.__all__ for a in node.names)
                ):
                    offenders.append(f"{path.name}: from {node.module} import …")
            if isinstance(node, ast.Import):
                offenders += [
                    f"{path.name}: import {a.name}"
                    for a in node.names
                    if a.name.startswith("jobrunner.")
                ]
    assert offenders == []


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys, contextlib, io\n"
        "from jobrunner._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "heavy = [m for m in ('psycopg', 'psycopg_pool', 'openai', 'aioboto3', 'fal_client',"
        " 'jobrunner_cineqo', 'anyio._backends._asyncio') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_exports_are_the_type_checking_imports():
    """The runtime map and what a type checker reads are the same list."""
    tree = ast.parse((SRC / "jobrunner" / "__init__.py").read_text("utf-8"))
    [block] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    seen = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.unparse(node)
        for alias in node.names:
            assert alias.asname == alias.name, "re-export as itself: " + ast.unparse(node)
            seen[alias.name] = "." + str(node.module)
    assert seen == jobrunner._EXPORTS


def test_sole_exception_unwraps_only_a_lone_leaf():
    lone = ValueError("x")
    assert jobrunner.sole_exception(ExceptionGroup("g", [ExceptionGroup("h", [lone])])) is lone
    two = ExceptionGroup("g", [ValueError("a"), KeyError("b")])
    assert jobrunner.sole_exception(two) is two
    assert jobrunner.sole_exception(lone) is lone
