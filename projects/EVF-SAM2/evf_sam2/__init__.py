"""EVF-SAM2: BEiT-3 text prompts for SAM-2 (from the ``sam2`` package), as mmevf modules.

Importing this package registers ``EVFSAM2`` (models) and ``SAM2Resize`` (transforms) in
mmevf's registries. ``sam2`` is optional for mmevf: this package needs it
(``SAM2_BUILD_CUDA=0 pip install sam2==1.1.0``).

The package has one name, ``projects.EVF-SAM2.evf_sam2``, as every project's package:
configs load it by ``custom_imports=dict(imports=['projects.EVF-SAM2.evf_sam2'])``
(``importlib`` accepts the dash) and the project's tools and tests by
``importlib.import_module``, with the repository root importable (run from it with
``PYTHONPATH=.``; the ``tools/dist_*.sh`` scripts set it). A second name would load a second
copy, which registers ``EVFSAM2`` twice.
"""
from .checkpoint import convert_evf_sam2_state_dict, sam2_to_official
from .evf_sam2 import EVFSAM2, build_sam2_model, load_sam2_checkpoint
from .transforms import SAM2Resize
from .video_frames import Frame, VideoFrames
from .video_tracker import EVFSAM2VideoTracker, TrackedFrame, text_prompted

__all__ = ['EVFSAM2', 'EVFSAM2VideoTracker', 'Frame', 'SAM2Resize', 'TrackedFrame', 'VideoFrames',
           'build_sam2_model', 'convert_evf_sam2_state_dict', 'load_sam2_checkpoint',
           'sam2_to_official', 'text_prompted']
