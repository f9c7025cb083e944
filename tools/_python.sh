# Sourced by tools/*.sh to pick the interpreter: $PYTHON if set, else the repository's .venv
# (what `make test` / `make env` build), else `python` from PATH. This lets the README's
# commands run after `make test` without activating the venv.
if [ -z "${PYTHON:-}" ]; then
    _mmevf_venv_python="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/python"
    if [ -x "$_mmevf_venv_python" ]; then
        PYTHON=$_mmevf_venv_python
    else
        PYTHON=python
    fi
    unset _mmevf_venv_python
fi
