# Sourced by scripts/test and scripts/run (bash): a virtual environment of the repository's
# own, .venv, so nothing is installed into the system's Python (which Debian and Ubuntu refuse:
# PEP 668, "externally-managed-environment").
#
#   ensure_venv              create .venv when it is missing or has no pip
#   venv_is_current          true when .venv was installed from the pyproject files as they are
#   mark_venv_current        remember that it was

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$REPO/.venv"
PY=${PYTHON:-python3}

_stamp() {
    cat "$REPO/pyproject.toml" "$REPO/plugins/cineqo/pyproject.toml" | cksum
}

venv_is_current() {
    [ -x "$VENV/bin/jobrunner" ] && [ -f "$VENV/.installed" ] && [ "$(cat "$VENV/.installed")" = "$(_stamp)" ]
}

mark_venv_current() {
    _stamp > "$VENV/.installed"
}

ensure_venv() {
    if ! command -v "$PY" >/dev/null 2>&1; then
        echo "jobrunner: $PY not found: install Python 3.11 or newer (or set PYTHON)" >&2
        exit 1
    fi
    if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "jobrunner: $PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); jobrunner needs 3.11 or newer (set PYTHON)" >&2
        exit 1
    fi
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        return
    fi
    rm -rf "$VENV"
    if "$PY" -m venv "$VENV" >/dev/null 2>&1; then
        return
    fi
    rm -rf "$VENV"  # half made: Debian and Ubuntu ship venv's pip apart, in pythonX.Y-venv
    local package
    package="python$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "jobrunner: installing $package, which $PY needs to create a virtual environment" >&2
        apt-get install -y -q "$package" >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$package" >/dev/null 2>&1; } \
            || true
        if "$PY" -m venv "$VENV"; then
            return
        fi
        rm -rf "$VENV"
    fi
    echo "jobrunner: $PY cannot create a virtual environment; install $package" \
        "(sudo apt install $package) and run this again" >&2
    exit 1
}
