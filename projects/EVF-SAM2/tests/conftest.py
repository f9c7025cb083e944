"""EVF-SAM2's tests: the repository and the project package importable, the repository's
SynthRef fixture. Helpers live in ``evf_sam2_helpers`` (a uniquely named module: every
``conftest`` is imported under that one name, so tests never import from it)."""
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
ROOT = PROJECT.parents[1]
for path in (str(ROOT), str(PROJECT)):
    if path not in sys.path:
        sys.path.insert(0, path)

from tests.conftest import synthref_root  # noqa: E402,F401
