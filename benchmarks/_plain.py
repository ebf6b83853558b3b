"""The plain install: ``benchmarks/.venv-plain``, jobrunner as a user gets it.

``pip install '<repository root>[binary]'`` (not editable; the ``binary`` extra, psycopg's
prebuilt libpq, as every documented install has it; uvloop comes as a normal dependency) plus
the harness's ``bench`` plugin (``benchmarks/plugin``), so the ``jobrunner-cli*`` rows run the
real ``jobrunner`` console script. A hash of the sources (``src/jobrunner``, ``pyproject.toml``,
the plugin) is stored in the venv; when it no longer matches, the venv is created anew and both
are installed again, so the rows always measure the current code, with exactly the dependencies
a new user gets. ``python -m benchmarks._plain`` (run by ``setup.sh``, and by ``run.py`` before
any ``jobrunner-cli*`` measurement) makes it current.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "benchmarks" / ".venv-plain"
PLUGIN = ROOT / "benchmarks" / "plugin"
HASH_FILE = VENV / "source.sha256"
SOURCES = (ROOT / "pyproject.toml", ROOT / "src" / "jobrunner", PLUGIN)
SKIPPED_PARTS = {"__pycache__", "build", "dist"}


class PlainVenvError(RuntimeError):
    """The plain venv is missing or older than the sources (run benchmarks/setup.sh)."""


def needed_by(library: str) -> bool:
    """Whether ``library``'s rows run the plain install (the ``jobrunner-cli*`` variants)."""
    return library.startswith("jobrunner-cli")


def jobrunner_script() -> Path:
    return VENV / "bin" / "jobrunner"


def source_hash(sources: tuple[Path, ...] = SOURCES, root: Path = ROOT) -> str:
    """SHA-256 over the relative path and bytes of every source file, in a stable order."""
    digest = hashlib.sha256()
    for top in sources:
        for path in sorted(top.rglob("*")) if top.is_dir() else [top]:
            relative = path.relative_to(root)
            if not path.is_file() or _skipped(relative):
                continue
            digest.update(str(relative).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _skipped(relative: Path) -> bool:
    """Build output and caches: not sources."""
    parts = relative.parts
    return (
        relative.suffix == ".pyc"
        or bool(set(parts) & SKIPPED_PARTS)
        or any(part.endswith(".egg-info") for part in parts)
    )


def is_current() -> bool:
    return (
        jobrunner_script().exists()
        and HASH_FILE.exists()
        and HASH_FILE.read_text().strip() == source_hash()
    )


def require() -> Path:
    """The plain install's ``jobrunner`` script; raises if the venv is missing or stale."""
    if not is_current():
        raise PlainVenvError(
            f"{VENV} is missing or older than the sources: run benchmarks/setup.sh "
            "(or python -m benchmarks._plain)"
        )
    return jobrunner_script()


def ensure(python: str | None = None) -> Path:
    """Create or refresh the plain venv (idempotent); returns its ``jobrunner`` script."""
    if is_current():
        return jobrunner_script()
    wanted = source_hash()
    # A new venv each time: dependencies resolved afresh, nothing left from an older install.
    _run([python or os.environ.get("PYTHON", "python3"), "-m", "venv", "--clear", str(VENV)])
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "--quiet", f"{ROOT}[binary]", str(PLUGIN)])
    HASH_FILE.write_text(wanted + "\n")
    return jobrunner_script()


def _run(command: list[str]) -> None:
    print("  " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


if __name__ == "__main__":
    script = ensure()
    version = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    print(f"  plain install: {version.stdout.strip()} ({VENV})")
