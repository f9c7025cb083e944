"""The project's tests see the repository root (``projects.EVF-Effi-SAM.evf_effi_sam``,
``tools``) and mmevf's SynthRef fixture."""
import effi_sam_testing  # noqa: F401  (puts the repository root on sys.path)
from tests.conftest import synthref_root  # noqa: F401  (session fixture of mmevf's tests)
