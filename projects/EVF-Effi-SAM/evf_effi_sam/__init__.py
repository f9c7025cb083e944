"""EVF-Effi-SAM (EVF-SAM with EfficientSAM): modules registered in mmevf's registries.

Configs load it with ``custom_imports=dict(imports=['projects.EVF-Effi-SAM.evf_effi_sam'])``
(``importlib`` accepts the dash); the repository root must be importable (run from it, or
``PYTHONPATH=.`` as ``tools/dist_train.sh`` sets it).
"""
from .checkpoint import EVF_EFFI_KEY_MAP, convert_evf_effi_state_dict, read_evf_effi_sam
from .image_encoder import EfficientSAMImageEncoder
from .prompt_head import (EfficientSAMMaskDecoder, EfficientSAMPromptEncoder,
                          EfficientSAMPromptHead)
from .segmentor import EVFEffiSAM
from .transforms import EffiSAMResize

__all__ = [
    'EfficientSAMImageEncoder', 'EfficientSAMPromptEncoder', 'EfficientSAMMaskDecoder',
    'EfficientSAMPromptHead', 'EVFEffiSAM', 'EffiSAMResize', 'EVF_EFFI_KEY_MAP',
    'convert_evf_effi_state_dict', 'read_evf_effi_sam'
]
