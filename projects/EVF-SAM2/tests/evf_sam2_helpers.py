"""Helpers of EVF-SAM2's tests; every test module skips when ``sam2`` is not installed."""
import importlib
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Optional

import pytest

PROJECT = Path(__file__).resolve().parents[1]
ROOT = PROJECT.parents[1]

SKIP_REASON = ('EVF-SAM2 needs the optional sam2 package: '
               'SAM2_BUILD_CUDA=0 pip install sam2==1.1.0 hydra-core iopath')
TINY_CONFIG = PROJECT / 'configs' / 'evf-sam2-tiny_synthref.py'
# the package's one name (the repository root is on the path: conftest.py)
PACKAGE = 'projects.EVF-SAM2.evf_sam2'


def import_project(module: Optional[str] = None) -> ModuleType:
    """The project package, or one of its modules, by its one name; importing it registers
    ``EVFSAM2`` and ``SAM2Resize``."""
    return importlib.import_module(PACKAGE if module is None else f'{PACKAGE}.{module}')


def require_sam2() -> None:
    """Skip the calling test module unless ``sam2`` (and hydra) import."""
    pytest.importorskip('sam2', reason=SKIP_REASON, exc_type=ImportError)


def project_env() -> dict:
    """``PYTHONPATH`` for subprocesses: the repository root, as ``tools/dist_*.sh`` set it (the
    configs import ``projects.EVF-SAM2.evf_sam2``; the project's tools find it themselves)."""
    return dict(PYTHONPATH=str(ROOT))


def run_command(cmd: list, cwd: Path = ROOT) -> str:
    """Run ``cmd`` with the repository importable; its output, asserting that it succeeded."""
    env = dict(os.environ, **project_env())
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr
