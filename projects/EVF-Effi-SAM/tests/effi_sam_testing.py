"""Paths and the project package for the EVF-Effi-SAM tests (a uniquely named module: the
project's tests folder is not a package, so its modules are imported by their bare names)."""
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PROJECT = ROOT / 'projects' / 'EVF-Effi-SAM'


def project_module():
    """The project package (registers its modules in mmevf's registries)."""
    return importlib.import_module('projects.EVF-Effi-SAM.evf_effi_sam')
