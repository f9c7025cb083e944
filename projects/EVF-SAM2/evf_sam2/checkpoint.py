"""The official EVF-SAM2 checkpoint layout <-> ``EVFSAM2`` keys."""
import re
from typing import Dict

from torch import Tensor

from mmevf.checkpoint.layouts import rename_prefixes

StateDict = Dict[str, Tensor]

# official prefix -> EVFSAM2 prefix
EVF_SAM2_KEY_MAP = (
    ('visual_model.', 'sam2.'),
    ('mm_extractor.beit3.', 'mm_encoder.'),
    ('text_hidden_fcs.0.', 'projector.mlp.'),
)
# SAM-2's CXBlock.gamma is saved as `.weight` by the official code (Hugging Face's old
# gamma/beta -> weight/bias renaming); only this direct parameter of a fuser block is renamed.
_GAMMA_OFFICIAL = re.compile(r'^(sam2\.memory_encoder\.fuser\.layers\.\d+)\.weight$')
_GAMMA_SAM2 = re.compile(r'^(visual_model\.memory_encoder\.fuser\.layers\.\d+)\.gamma$')


def convert_evf_sam2_state_dict(state: StateDict, source: str = 'checkpoint') -> StateDict:
    """Official EVF-SAM2 keys (``visual_model.*``, ``mm_extractor.beit3.*``,
    ``text_hidden_fcs.0.*``) -> ``EVFSAM2`` keys; unknown prefixes are an error."""
    if any(k.startswith(('visual_model.mask_decoder.', 'visual_model.prompt_encoder.'))
           for k in state):
        raise ValueError(f'{source} is an EVF-SAM (SAM-1) or EVF-Effi-SAM checkpoint, not '
                         'EVF-SAM2 (no visual_model.sam_mask_decoder.*)')
    if not any(k.startswith('visual_model.sam_mask_decoder.') for k in state):
        raise ValueError(f'{source} has no visual_model.sam_mask_decoder.*: not EVF-SAM2')
    renamed = rename_prefixes(state, EVF_SAM2_KEY_MAP, source, 'EVF-SAM2')
    return {_GAMMA_OFFICIAL.sub(r'\1.gamma', k): v for k, v in renamed.items()}


def sam2_to_official(sam2_state: StateDict) -> StateDict:
    """A ``sam2`` model's state dict -> the official ``visual_model.*`` keys (gamma saved as
    ``.weight``), e.g. to write a checkpoint in the official layout."""
    return {_GAMMA_SAM2.sub(r'\1.weight', 'visual_model.' + k): v
            for k, v in sam2_state.items()}
