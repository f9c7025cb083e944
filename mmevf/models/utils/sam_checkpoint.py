"""mmevf segmentor weights -> SAM's own checkpoint layout (``sam_vit_*.pth``)."""
from typing import Dict

import torch

from .weights import read_state_dict

# mmevf key prefix -> SAM key prefix (EVFSAM, DITSam and SAMPretrainer share these names)
SAM_PREFIXES = {
    'image_encoder.': 'image_encoder.',
    'prompt_head.prompt_encoder.': 'prompt_encoder.',
    'prompt_head.mask_decoder.': 'mask_decoder.',
}


def mmevf_to_sam_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The SAM part of an mmevf checkpoint, with SAM's key names (``image_encoder.*``,
    ``prompt_encoder.*``, ``mask_decoder.*``), as ``SAMImageEncoder(pretrained=...)`` and
    ``SAMPromptHead(pretrained=...)`` read official SAM files.

    Raises:
        KeyError: naming the file and the missing part, when it lacks one of the three.
    """
    state = read_state_dict(path)
    converted = {}
    for src, dst in SAM_PREFIXES.items():
        part = {dst + k[len(src):]: v for k, v in state.items() if k.startswith(src)}
        if not part:
            raise KeyError(f'{path} holds no {src}* weights: not an mmevf SAM-based checkpoint')
        converted.update(part)
    return converted
