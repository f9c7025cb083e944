"""EVF-SAM2: BEiT-3 text prompts for SAM-2 (from the ``sam2`` package), as mmevf modules.

Importing this package registers ``EVFSAM2`` (models) and ``SAM2Resize`` (transforms) in
mmevf's registries. ``sam2`` is optional for mmevf: this package needs it
(``SAM2_BUILD_CUDA=0 pip install sam2==1.1.0``).

Configs load it as every project's package is loaded,
``custom_imports=dict(imports=['projects.EVF-SAM2.evf_sam2'])`` (``importlib`` accepts the
dash), with the repository root importable (run from it with ``PYTHONPATH=.``; the
``tools/dist_*.sh`` scripts set it). The short name ``evf_sam2`` (``projects/EVF-SAM2`` on the
path, as configs of the first release and the project's tools import it) gives the same module
objects, so the registries see every class once.
"""
import importlib
import pkgutil
import sys
from pathlib import Path

PACKAGE = 'projects.EVF-SAM2.evf_sam2'

if __name__ != PACKAGE:
    # Imported under another name: hand out the modules of the full name instead of loading
    # a second copy (which would register EVFSAM2 twice). Importing replaces sys.modules'
    # entry with the one set here.
    root = str(Path(__file__).resolve().parents[3])
    if root not in sys.path:
        sys.path.append(root)
    package = importlib.import_module(PACKAGE)
    sys.modules[__name__] = package
    for submodule in pkgutil.iter_modules(package.__path__):
        sys.modules[f'{__name__}.{submodule.name}'] = importlib.import_module(
            f'{PACKAGE}.{submodule.name}')
else:
    from .checkpoint import convert_evf_sam2_state_dict, sam2_to_official
    from .evf_sam2 import EVFSAM2, build_sam2_model, load_sam2_checkpoint
    from .transforms import SAM2Resize

    __all__ = ['EVFSAM2', 'SAM2Resize', 'build_sam2_model', 'convert_evf_sam2_state_dict',
               'load_sam2_checkpoint', 'sam2_to_official']
