"""EVF-SAM2: BEiT-3 text prompts for SAM-2 (from the ``sam2`` package), as mmevf modules.

Importing this package registers ``EVFSAM2`` (models) and ``SAM2Resize`` (transforms) in
mmevf's registries. ``sam2`` is optional for mmevf: this package needs it
(``SAM2_BUILD_CUDA=0 pip install sam2==1.1.0``).
"""
from .checkpoint import convert_evf_sam2_state_dict, sam2_to_official
from .evf_sam2 import EVFSAM2, build_sam2_model, load_sam2_checkpoint
from .transforms import SAM2Resize

__all__ = ['EVFSAM2', 'SAM2Resize', 'build_sam2_model', 'convert_evf_sam2_state_dict',
           'load_sam2_checkpoint', 'sam2_to_official']
