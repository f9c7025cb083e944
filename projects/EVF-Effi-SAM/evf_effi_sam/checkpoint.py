"""The official EVF-Effi-SAM checkpoint layout (Hugging Face folder, as EVF-SAM's) -> mmevf keys.

Official keys (reference notes §2.2 / §2.7, 278 EfficientSAM tensors):
``visual_model.image_encoder.*``, ``visual_model.prompt_encoder.*``,
``visual_model.mask_decoder.*``, ``mm_extractor.beit3.*``, ``text_hidden_fcs.0.*``.
"""
from typing import Tuple

from mmevf.checkpoint.io import StateDict
from mmevf.checkpoint.layouts import read_evf_sam_folder, rename_prefixes

EVF_EFFI_KEY_MAP: Tuple[Tuple[str, str], ...] = (
    ('visual_model.image_encoder.', 'image_encoder.'),
    ('visual_model.prompt_encoder.', 'prompt_head.prompt_encoder.'),
    ('visual_model.mask_decoder.', 'prompt_head.mask_decoder.'),
    ('mm_extractor.beit3.', 'mm_encoder.'),
    ('text_hidden_fcs.0.', 'projector.mlp.'),
)
# present in every EVF-Effi checkpoint, in no SAM-1 / SAM-2 one
_EFFI_MARKER = 'visual_model.prompt_encoder.invalid_points.weight'


def convert_evf_effi_state_dict(state: StateDict, source: str = 'checkpoint') -> StateDict:
    """Rename official EVF-Effi-SAM keys to ``EVFEffiSAM`` keys; unknown keys (and checkpoints
    of the other EVF variants) are an error."""
    if _EFFI_MARKER not in state:
        raise ValueError(f'{source} is not an EVF-Effi-SAM (EfficientSAM) checkpoint: it has no '
                         f'{_EFFI_MARKER} (EVF-SAM / EVF-SAM2 checkpoints convert with '
                         f'tools/model_converters/evf_sam2mmevf.py)')
    return rename_prefixes(state, EVF_EFFI_KEY_MAP, source, 'EVF-Effi-SAM')


def read_evf_effi_sam(folder: str) -> StateDict:
    """An official EVF-Effi-SAM folder with ``EVFEffiSAM``'s keys."""
    return convert_evf_effi_state_dict(read_evf_sam_folder(folder)[0], source=folder)
