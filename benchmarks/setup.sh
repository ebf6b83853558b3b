#!/usr/bin/env bash
# Create the benchmark-only environment: benchmarks/.venv (peers + jobrunner editable),
# benchmarks/.venv-plain (jobrunner as a user installs it, plus the bench plugin: the
# `jobrunner run` rows) and benchmarks/node/node_modules (graphile-worker). Idempotent;
# never touches pyproject.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY=${PYTHON:-python3}

if [ ! -x "$HERE/.venv/bin/python" ]; then
    "$PY" -m venv "$HERE/.venv"
fi
PIP=("$HERE/.venv/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install --quiet --upgrade pip
# Peers at their latest release; psycopg and asyncpg are the drivers the peers use.
"${PIP[@]}" install --quiet --upgrade procrastinate pgqueuer asyncpg "psycopg[binary,pool]"
"${PIP[@]}" install --quiet -e "$ROOT" -e "$ROOT/plugins/cineqo"
"$HERE/.venv/bin/python" - <<'PY'
from importlib.metadata import version
for name in ("procrastinate", "pgqueuer", "asyncpg", "psycopg", "jobrunner"):
    print(f"  {name} {version(name)}")
PY
# The plain install: recreated only when src/jobrunner, pyproject.toml or the plugin changed.
(cd "$ROOT" && PYTHON="$PY" "$HERE/.venv/bin/python" -m benchmarks._plain)

if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
    (cd "$HERE/node" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
    echo "  node $(node --version), graphile-worker $(node -p "require('$HERE/node/node_modules/graphile-worker/package.json').version")"
else
    echo "  note: node/npm not found; graphile-worker scenarios will be reported as 'n/a'"
fi
echo "benchmark environment ready: $HERE/.venv"
