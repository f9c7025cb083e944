"""EVF-SAM2's tests: the repository importable (so is the project package, by its one name
``projects.EVF-SAM2.evf_sam2``), the repository's SynthRef fixture. Helpers live in
``evf_sam2_helpers`` (a uniquely named module: every ``conftest`` is imported under that one
name, so tests never import from it)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.conftest import synthref_root  # noqa: E402,F401
